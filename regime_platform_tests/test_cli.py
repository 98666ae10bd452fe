"""`regime-platform run` (what `make run` calls): the range it picks offline, and a real end-to-end run."""
from __future__ import annotations

import datetime as dt
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
    first, last, source = cli.plan_range(settings)
    assert (first, last, source) == (dt.date(2000, 1, 3), dt.date(2018, 12, 31), "sample:^GSPC")
    out = capsys.readouterr().out
    assert "past the end of the bundled sample (2018-12-31): not fetched" in out
    assert "OFFLINE" in out and "S&P 500 index" in out


def test_offline_plan_for_qqq_names_the_nasdaq_composite(offline, tmp_path, capsys):
    first, last, source = cli.plan_range(Settings(data_dir=tmp_path, ticker="QQQ"))
    assert (first, last, source) == (dt.date(2000, 1, 3), dt.date(2018, 12, 31), "sample:^IXIC")
    out = capsys.readouterr().out
    assert ("OFFLINE: serving the bundled sample — the Nasdaq Composite index (^IXIC, 1999-01-04 … 2018-12-31) "
            "stands in for QQQ; 2000-01-03 … 2018-12-31 planned; rows say source=sample:^IXIC.") in out
    assert "S&P 500" not in out


def test_offline_plan_for_an_unknown_ticker_says_what_to_do_and_plans_nothing(offline, tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"no data source is available: .*the bundled offline sample has no IWM: "
                                         r".*or use SPY or QQQ\.$"):
        cli.plan_range(Settings(data_dir=tmp_path, ticker="IWM"))
    assert "OFFLINE" not in capsys.readouterr().out


def test_offline_refuses_to_overwrite_live_history(offline, tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA market; CREATE TABLE market.ohlcv (date DATE, ticker VARCHAR)")
    con.execute("INSERT INTO market.ohlcv VALUES ('2024-05-01', 'SPY')")
    con.close()
    with pytest.raises(SystemExit, match="already holds 2024-05-01.*go online, or use a fresh REGIME_DATA_DIR"):
        cli.plan_range(Settings(data_dir=tmp_path))


def test_run_end_to_end_offline_in_a_fresh_instance(tmp_path):
    """The real command in a subprocess with no network to Yahoo: a short history keeps it quick."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml.template").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "REGIME_DATA_DIR": str(tmp_path / "data"),
           "REGIME_START": "2016-01-04", "REGIME_SOURCE": "sample",
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
    assert "done: SPY 2016-01-04 … 2018-12-31 from sample:^GSPC" in out.stdout
    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True)
    n, distinct, source = con.execute(
        "SELECT count(*), count(DISTINCT date), min(source) FROM market.ohlcv").fetchone()
    feature_rows = con.execute("SELECT count(*) FROM market.features").fetchone()[0]
    labelers = con.execute("SELECT DISTINCT labeler FROM market.regime_labels").fetchall()
    models = con.execute("SELECT DISTINCT model FROM market.oos_predictions ORDER BY 1").fetchall()
    con.close()
    assert n == distinct == 754 and source == "sample:^GSPC"
    assert feature_rows == 754 and labelers == [("user",)]
    # three years are too short for yearly folds: the single chronological split, with every model
    assert [m for (m,) in models] == ["cnn", "ensemble", "logistic", "lstm", "majority", "persistence", "random_forest"]
    for name in ("lstm_model", "random_forest_model"):
        assert (tmp_path / "data" / "artifacts" / name / "folds_h5.json").exists()
    # The runs are recorded in the instance `make ui` shows.
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) >= 1
        # every step in the command's process: a subprocess per step cost ~16 s each, three quarters of this test
        assert all(r.run_config.get("execution") == {"config": {"in_process": {}}} for r in runs)
