"""Two people press Materialize at once (DESIGN §4): two real `dagster asset materialize` processes on one instance and
one DuckDB file. The `duckdb` pool (limit 1, from dagster.yaml.template) queues their steps: both finish, no "Could
not set lock", and the rows are right — once each."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from regime_platform import calendar
from regime_platform.runs import IN_PROCESS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # two Dagster processes side by side: about 30-60 s on 2 cores
def test_two_writing_runs_at_once_queue_on_the_pool_and_both_finish(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml.template").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "REGIME_DATA_DIR": str(tmp_path / "data"),
           "REGIME_SOURCE": "sample", "REGIME_TICKERS": "SPY", "PYTHONWARNINGS": "ignore"}
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get():  # the instance exists before anyone presses Materialize (`make run` made it)
        pass
    ranges = ["2018-12-03...2018-12-31", "2018-11-01...2018-11-30"]  # two writers of one table, either order
    procs = [subprocess.Popen([sys.executable, "-m", "dagster", "asset", "materialize", "-m",
                               "regime_platform.definitions", "--select", "ohlcv", "--partition-range", r,
                               "--config-json", IN_PROCESS], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in ranges]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, out in zip(procs, outs):
        assert proc.returncode == 0, out[-3000:]
        assert "Could not set lock" not in out and "IOException" not in out
        assert "RUN_SUCCESS" in out
    # queued, not lucky: the two runs' ohlcv steps (pool "duckdb") never ran at the same time
    with dg.DagsterInstance.get() as instance:
        spans = []
        for run in instance.get_runs():
            times = {e.dagster_event_type: e.timestamp for e in instance.all_logs(run.run_id)
                     if e.dagster_event and e.step_key == "ohlcv" and e.dagster_event_type in
                     (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS)}
            spans.append((times[dg.DagsterEventType.STEP_START], times[dg.DagsterEventType.STEP_SUCCESS]))
    assert len(spans) == 2
    (_, first_end), (second_start, _) = sorted(spans)
    assert first_end <= second_start, spans
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        n, days, first, last = con.execute("SELECT count(*), count(DISTINCT date), min(date), max(date) "
                                           "FROM market.ohlcv WHERE ticker = 'SPY'").fetchone()
    assert (n, days, str(first), str(last)) == (40, 40, "2018-11-01", "2018-12-31")


@pytest.mark.slow  # one backfill of nine years of ohlcv while the CLI and the UI's code read: about 70 s
@pytest.mark.filterwarnings("ignore:Starting in dagster 1.11:UserWarning")  # get_*_def, as the daemon's tick uses them
def test_reads_during_a_writing_run_wait_or_explain_and_the_ui_code_keeps_working(tmp_path, monkeypatch):
    """While a real run writes the warehouse, a person runs `regime-platform status` again and again and the UI's code
    server loads the definitions and ticks the schedule and sensors (the daemon's work): every status either answers
    or says in one sentence that a run holds the file, never a traceback; the definitions, schedule and sensors
    never touch the warehouse, so the UI works on through the run; and the run finishes with its rows."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml.template").read_text())
    data = tmp_path / "data"
    env = {**os.environ, "DAGSTER_HOME": str(home), "REGIME_DATA_DIR": str(data), "REGIME_SOURCE": "sample",
           "REGIME_TICKERS": "SPY", "PYTHONWARNINGS": "ignore"}
    for name in ("DAGSTER_HOME", "REGIME_DATA_DIR", "REGIME_SOURCE", "REGIME_TICKERS"):
        monkeypatch.setenv(name, env[name])
    with dg.DagsterInstance.get():
        pass
    from regime_platform.definitions import defs as build
    from regime_platform.defs.resources import RegimeSettings

    status = [str(Path(sys.executable).parent / "regime-platform"), "status", "--wait", "1"]
    log = tmp_path / "run.log"  # a file, not a pipe: nobody reads a pipe while the loop below runs, and a full one blocks
    writer = subprocess.Popen([sys.executable, "-m", "dagster", "asset", "materialize", "-m",
                               "regime_platform.definitions", "--select", "ohlcv",
                               "--partition-range", "2010-01-04...2018-12-31", "--config-json", IN_PROCESS],
                              cwd=tmp_path, env=env, stdout=(sink := log.open("w")), stderr=subprocess.STDOUT)
    answers, ticks = [], 0
    try:
        while not (data / "warehouse.duckdb").exists() and writer.poll() is None:  # the run has begun writing
            time.sleep(0.2)
        while writer.poll() is None:
            read = subprocess.run(status, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            answers.append((read.returncode, read.stdout + read.stderr, writer.poll() is None))
            loaded = build()
            with dg.DagsterInstance.get() as instance:
                with dg.build_schedule_context(instance=instance, repository_def=loaded.get_repository_def(),
                                               scheduled_execution_time=dt.datetime.now(dt.timezone.utc),
                                               resources={"settings": RegimeSettings(tickers=["SPY"])}) as context:
                    loaded.get_schedule_def("daily_forecast_schedule").evaluate_tick(context)
                loaded.get_sensor_def("tickers_sensor").evaluate_tick(dg.build_sensor_context(
                    instance=instance, resources={"settings": RegimeSettings(tickers=["SPY"])}, definitions=loaded))
                loaded.get_sensor_def("freshness_sensor").evaluate_tick(dg.build_sensor_context(
                    instance=instance, repository_def=loaded.get_repository_def()))
            ticks += 1
        writer.wait(timeout=600)
        out = log.read_text()
    finally:
        if writer.poll() is None:
            writer.kill()
        sink.close()
    assert writer.returncode == 0 and "RUN_SUCCESS" in out, out[-3000:]
    during = [a for a in answers if a[2]]
    assert during and ticks >= len(during), (len(answers), ticks)
    for code, text, _ in answers:
        assert "Traceback" not in text, text[-2000:]
        if code != 0:  # the run held the file past the wait: one sentence saying so and what to do
            lines = [line for line in text.strip().splitlines() if line.strip()]
            assert len(lines) == 1 and "is locked by another process" in lines[0], text
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM market.ohlcv WHERE ticker = 'SPY'").fetchone()[0]
    assert stored == len(calendar.sessions(dt.date(2010, 1, 4), dt.date(2018, 12, 31)))
