"""Two people press Materialize at once (DESIGN §4): two real `dagster asset materialize` processes on one instance and
one DuckDB file. The `duckdb` pool (limit 1, from dagster.yaml.template) queues their steps: both finish, no "Could
not set lock", and the rows are right — once each."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

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
