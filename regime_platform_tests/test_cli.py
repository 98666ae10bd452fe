"""`regime-platform run` (what `make run` calls): the range it picks offline, and a real end-to-end run."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from regime_platform import cli
from regime_platform.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def offline(monkeypatch):
    import yfinance

    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pd.DataFrame())


def test_offline_plan_is_the_sample_range_and_says_so(offline, tmp_path, capsys):
    settings = Settings(data_dir=tmp_path)
    plan = cli.plan_range(settings)
    assert (plan.first, plan.last, plan.sources, plan.build) == (
        dt.date(2000, 1, 3), dt.date(2018, 12, 31), {"SPY": "sample:^GSPC"}, ["SPY"])
    out = capsys.readouterr().out
    assert "past the end of the bundled sample (2018-12-31): not fetched" in out
    assert "OFFLINE" in out and "S&P 500 index" in out


def test_offline_plan_for_qqq_names_the_nasdaq_composite(offline, tmp_path, capsys):
    plan = cli.plan_range(Settings(data_dir=tmp_path, tickers=("QQQ",)))
    assert (plan.first, plan.last, plan.sources) == (dt.date(2000, 1, 3), dt.date(2018, 12, 31), {"QQQ": "sample:^IXIC"})
    out = capsys.readouterr().out
    assert ("OFFLINE: serving the bundled sample — the Nasdaq Composite index (^IXIC, 1999-01-04 … 2018-12-31) "
            "stands in for QQQ; 2000-01-03 … 2018-12-31 planned; rows say source=sample:^IXIC.") in out
    assert "S&P 500" not in out


def test_offline_plan_for_an_unknown_ticker_says_what_to_do_and_plans_nothing(offline, tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"no data source is available: no source can serve IWM: .*the bundled "
                                         r"offline sample has no IWM: .*or use SPY or QQQ\.$"):
        cli.plan_range(Settings(data_dir=tmp_path, tickers=("IWM",)))
    assert "OFFLINE" not in capsys.readouterr().out


def test_a_ticker_no_source_serves_is_left_out_alone(offline, tmp_path, capsys):
    plan = cli.plan_range(Settings(data_dir=tmp_path, tickers=("SPY", "IWM", "QQQ")))
    assert plan.tickers == ["SPY", "QQQ"] and list(plan.failed) == ["IWM"]
    assert "the bundled offline sample has no IWM" in plan.failed["IWM"]
    out = capsys.readouterr().out
    assert "not served, left out: no source can serve IWM: " in out and "stands in for QQQ" in out and "stands in for SPY" in out


def test_a_ticker_added_later_is_built_alone(offline, tmp_path, capsys):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA market; CREATE TABLE market.ohlcv (date DATE, ticker VARCHAR)")
    con.execute("INSERT INTO market.ohlcv VALUES ('2000-01-03', 'SPY'), ('2018-12-31', 'SPY')")
    con.close()
    plan = cli.plan_range(Settings(data_dir=tmp_path, tickers=("SPY", "QQQ")))
    assert plan.build == ["QQQ"]
    assert "SPY already stored 2000-01-03 … 2018-12-31: left as they are; building QQQ." in capsys.readouterr().out
    steps = cli.run_steps(plan)
    assert [s.target for s in steps] == ["history_ingestion_assets_job", "history_ingestion_checks_job",
                                         "history_features_assets_job", "history_features_checks_job",
                                         cli.PER_TICKER, cli.LEDGER, cli.SCOREBOARD]
    assert json.loads(steps[0].config)["ops"] == {"ohlcv": {"config": {"tickers": ["QQQ"]}}}
    assert json.loads(steps[2].config)["ops"] == {"features": {"config": {"tickers": ["QQQ"]}}}
    assert steps[0].partitions == ("2000-01-03", "2018-12-31") and steps[1].partitions == ("2018-12-31",) * 2
    assert steps[4].partitions == ("QQQ", "QQQ") and json.loads(steps[5].config)["ops"]["regime_forecasts"][
        "config"] == {"tickers": ["QQQ"]}


def test_offline_refuses_to_overwrite_live_history(offline, tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA market; CREATE TABLE market.ohlcv (date DATE, ticker VARCHAR)")
    con.execute("INSERT INTO market.ohlcv VALUES ('2024-05-01', 'SPY')")
    con.close()
    with pytest.raises(SystemExit, match="already holds 2024-05-01.*go online, or use a fresh REGIME_DATA_DIR"):
        cli.plan_range(Settings(data_dir=tmp_path))


def spy_fingerprint(data: Path) -> dict[str, str]:
    """A hash of every SPY row of every table and of every SPY artifact file: what adding a ticker must not touch."""
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.columns WHERE table_schema = "
                                        "'market' AND column_name = 'ticker' ORDER BY 1").fetchall()]
    out = {}
    for table in tables:
        rows = con.execute(f"SELECT * FROM market.{table} WHERE ticker = 'SPY' ORDER BY ALL").fetchall()
        out[table] = hashlib.sha256(repr(rows).encode()).hexdigest() if rows else "empty"
    con.close()
    for path in sorted(p for p in (data / "artifacts").glob("*/SPY/**/*") if p.is_file()):
        out[str(path.relative_to(data))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_run_end_to_end_offline_then_a_second_ticker_added_later(tmp_path):
    """The real command in a subprocess with no network to Yahoo: a short history keeps it quick. Then QQQ is added
    to REGIME_TICKERS and the command run again: QQQ is built, SPY's stored rows and files stay byte for byte."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml.template").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "REGIME_DATA_DIR": str(tmp_path / "data"),
           "REGIME_START": "2016-01-04", "REGIME_SOURCE": "sample", "REGIME_TICKERS": "SPY",
           "REGIME_EPOCHS": "2", "REGIME_MAX_FOLDS": "2",
           # the in-span capacity search triples the LSTM and CNN fits; it has its own tests (test_forecast_quality;
           # test_modeling_assets runs the defaults): this one is about the command
           "REGIME_INNER_VALIDATION": "0"}
    # the user's own labels (20-session realized volatility above its median = 1): the user-file path end to end
    from regime_platform.ingestion.sources import SampleSource

    bars = SampleSource().fetch("SPY", dt.date(2015, 11, 2), dt.date(2018, 12, 31))
    vol = (bars["adj_close"].log().diff().rolling_std(20)).to_numpy()
    labelled = [(d, int(v > np.nanmedian(vol))) for d, v in zip(bars["date"], vol) if d >= dt.date(2016, 1, 4)]
    labels_file = tmp_path / "data" / "regimes" / "regime_labels.csv"
    labels_file.parent.mkdir(parents=True)
    labels_file.write_text("Date,regime\n" + "".join(f"{d},{r}\n" for d, r in labelled))
    cmd = [str(Path(sys.executable).parent / "regime-platform"), "run"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)  # a hang guard
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "done: SPY 2016-01-04 … 2018-12-31 from sample:^GSPC in " in out.stdout
    assert "step 1/7: ohlcv and macro of SPY, 2016-01-04 … 2018-12-31 (0 min 00 s so far)" in out.stdout
    assert "step 7/7: forecast scoreboard" in out.stdout and "it/s" not in out.stdout  # lines, not a progress bar
    # the last word is today's answer, one line per ticker, the offline sample said plainly
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("[regime-platform] today: SPY 2018-12-31: known regime ") and " forecasts " in last
    assert "ensemble forecasts" in last and "position " in last and "OFFLINE sample: ^GSPC standing in for SPY" in last
    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True)
    n, distinct, source = con.execute(
        "SELECT count(*), count(DISTINCT date), min(source) FROM market.ohlcv").fetchone()
    feature_rows = con.execute("SELECT count(*) FROM market.features").fetchone()[0]
    labelers = con.execute("SELECT DISTINCT labeler FROM market.regime_labels").fetchall()
    models = con.execute("SELECT DISTINCT model FROM market.oos_predictions ORDER BY 1").fetchall()
    version = con.execute("SELECT DISTINCT targets_version FROM market.oos_predictions").fetchall()
    recorded = con.execute("SELECT model, count(*) FROM market.fold_records GROUP BY ALL ORDER BY 1").fetchall()
    con.close()
    assert n == distinct == 754 and source == "sample:^GSPC"
    assert feature_rows == 754 and labelers == [("user",)]
    # three years are too short for yearly folds: the single chronological split, with every model
    assert [m for (m,) in models] == ["cnn", "ensemble", "gradient_boosting", "logistic", "lstm", "majority", "persistence",
                                      "random_forest"]
    assert len(version) == 1 and version[0][0].startswith("user-h5-")
    assert recorded == [(m, 1) for (m,) in models]  # every model's fold record (one split) beside its rows
    before = spy_fingerprint(tmp_path / "data")
    assert len(before) > 20 and before["regime_forecasts"] != "empty"

    # QQQ added later: the labels file now says whose it is, QQQ is generated (jump), SPY is left alone
    labels_file.rename(labels_file.with_name("regime_labels_SPY.csv"))
    again = subprocess.run(cmd, cwd=ROOT, env={**env, "REGIME_TICKERS": "SPY,QQQ"}, capture_output=True, text=True,
                           timeout=1800)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "SPY already stored 2016-01-04 … 2018-12-31: left as they are; building QQQ." in again.stdout
    assert "done: QQQ 2016-01-04 … 2018-12-31 from sample:^GSPC, sample:^IXIC" in again.stdout
    answers = [line for line in again.stdout.splitlines() if line.startswith("[regime-platform] today: ")]
    assert [a.split()[2] for a in answers] == ["QQQ", "SPY"] and "^IXIC standing in for QQQ" in answers[0]
    assert spy_fingerprint(tmp_path / "data") == before
    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True)
    per_ticker = dict(con.execute("SELECT ticker, count(DISTINCT model) FROM market.oos_predictions GROUP BY 1").fetchall())
    ledger_rows = dict(con.execute("SELECT ticker, count(*) FROM market.regime_forecasts GROUP BY 1").fetchall())
    qqq_source = con.execute("SELECT DISTINCT source FROM market.ohlcv WHERE ticker = 'QQQ'").fetchall()
    con.close()
    assert per_ticker == {"SPY": 8, "QQQ": 8} and ledger_rows == {"SPY": 8, "QQQ": 8}  # every model in MODELS
    assert qqq_source == [("sample:^IXIC",)]
    # The runs are recorded in the instance `make ui` shows, with a partition per ticker.
    import dagster as dg

    from regime_platform_tests.instance import instance_at

    with instance_at(home) as instance:
        runs = instance.get_runs()
        assert len(runs) >= 1
        # every step in the command's process: a subprocess per step cost ~16 s each, three quarters of this test
        assert all(r.run_config.get("execution") == {"config": {"in_process": {}}} for r in runs)
        assert instance.get_dynamic_partitions("tickers") == ["SPY", "QQQ"]
        # the daily assets' checks ran once per command over every stored row, not once per session (754 each)
        for asset, check in [("ohlcv", "ohlcv_quality"), ("ohlcv", "every_ticker_served"), ("macro", "macro_quality"),
                             ("features", "features_causal"), ("ohlcv", "fresh_through_last_session")]:
            history = instance.event_log_storage.get_asset_check_execution_history(
                dg.AssetCheckKey(dg.AssetKey(asset), check), limit=10_000)
            assert len(history) == 2, (check, len(history))
            assert all(r.status.value == "SUCCEEDED" for r in history), check  # ran and passed
