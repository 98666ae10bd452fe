"""`regime-platform forecast` and `status` on a small warehouse: tables, --json, and a held DuckDB lock."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from regime_platform import cli
from regime_platform import storage as wh
from regime_platform.forecasting import ledger

ROOT = Path(__file__).resolve().parents[1]
D = dt.date


def ledger_rows(as_of: dt.date, status: str, realized: int | None) -> pl.DataFrame:
    rows = []
    for model, probs in (("lstm", [0.2, 0.8]), ("persistence", [1.0, 0.0])):
        rows.append({"ticker": "SPY", "as_of": as_of, "target_date": ledger.target_session(as_of, 5), "horizon": 5, "model": model,
                     "predicted_regime": int(probs[1] > probs[0]), "probabilities": probs,
                     "model_version": f"{model}-2018-12-14-abcd1234", "price_source": "sample:^GSPC",
                     "status": status, "realized_regime": realized,
                     "labels_version": "jump-x" if status == "scored" else None})
    return pl.DataFrame(rows, schema=ledger.LEDGER_SCHEMA)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("REGIME_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    wh.ensure_schema(con, ["ohlcv", "regime_forecasts"])
    con.execute("INSERT INTO market.ohlcv VALUES ('2018-12-21', 'SPY', 1, 1, 1, 1, 1, 1, 'sample:^GSPC', now())")
    wh.write_forecasts(con, "SPY", D(2018, 12, 20), ledger_rows(D(2018, 12, 20), "scored", 1))
    wh.write_forecasts(con, "SPY", D(2018, 12, 21), ledger_rows(D(2018, 12, 21), "pending", None))
    wh.ensure_schema(con, ["regime_labels"])
    con.execute("INSERT INTO market.regime_labels VALUES ('SPY', '2018-12-21', 1, 1, 'turbulent', 'jump', NULL, NULL), "
                "('SPY', '2018-12-20', 0, 0, 'calm', 'jump', NULL, NULL)")
    con.close()
    return tmp_path


def test_forecast_prints_the_latest_forecast_per_model(data_dir, capsys):
    assert cli.main(["forecast"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    # no ensemble in this ledger: the line names the first model of the ticker
    assert lines[0] == ("SPY after the close of 2018-12-21: lstm forecasts turbulent for 2018-12-31 (p = 0.80); "
                        "prices from sample:^GSPC (the bundled offline sample).")
    table = lines[2:]
    assert table[0].split() == ["ticker", "model", "as_of", "target_date", "regime_name", "probability",
                                "model_version", "status"]
    assert table[2].split() == ["SPY", "lstm", "2018-12-21", "2018-12-31", "turbulent", "0.800",
                                "lstm-2018-12-14-abcd1234", "pending"]
    assert table[3].split()[:6] == ["SPY", "persistence", "2018-12-21", "2018-12-31", "calm", "1.000"]


def test_forecast_json(data_dir, capsys):
    assert cli.main(["forecast", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["forecasts"]
    assert [r["model"] for r in rows] == ["lstm", "persistence"]
    assert rows[0] | {} == rows[0] and rows[0]["probability"] == pytest.approx(0.8)
    assert rows[0]["as_of"] == "2018-12-21" and rows[0]["regime_name"] == "turbulent"


def test_status_shows_tables_and_the_scoreboard(data_dir, capsys):
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "market.ohlcv" in out and "2018-12-21" in out and "DAGSTER_HOME is not set" in out
    board = out.split("scoreboard")[1]
    lstm = next(line for line in board.splitlines() if line.startswith("SPY") and "lstm" in line)
    assert lstm.split()[:6] == ["SPY", "lstm", "5", "1", "1", "1.000"]  # one scored row, predicted 1, realized 1


def test_status_json_reads_freshness_and_failing_checks_from_the_instance(data_dir, tmp_path, monkeypatch, capsys):
    from regime_platform.defs import automation

    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml.template").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="ohlcv", partition="2018-12-21"))
        check = automation.freshness_checks[0]  # ohlcv: 2018 is long overdue
        dg.materialize([check], instance=instance, selection=dg.AssetSelection.checks(check), raise_on_error=False)
    assert cli.main(["status", "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert {"asset": "ohlcv", "freshest_partition": "2018-12-21"}.items() <= view["assets"][0].items()
    (failing,) = view["failing_checks"]
    assert failing["check"] == "fresh_through_last_session" and "overdue" in failing["description"]
    assert {r["table"]: r["newest_date"] for r in view["tables"]}["market.regime_forecasts"] == "2018-12-21"
    lstm = next(r for r in view["scoreboard"] if r["model"] == "lstm")
    assert (lstm["scored"], lstm["pending"], lstm["live_hit_rate"]) == (1, 1, 1.0)


def test_a_held_lock_waits_briefly_then_says_so_in_one_sentence(data_dir):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(60)", str(data_dir / "warehouse.duckdb")], stdout=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(SystemExit) as exc:
            cli.main(["forecast", "--wait", "1.5"])
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    message = str(exc.value)
    assert message.startswith("the warehouse") and "is locked by another process" in message
    assert "Traceback" not in message and message.count(". ") == 0 and 1.4 <= waited < 10
    assert cli.main(["forecast", "--wait", "1.5"]) == 0  # the lock is gone: it reads again


def test_no_warehouse_yet(tmp_path, monkeypatch):
    monkeypatch.setenv("REGIME_DATA_DIR", str(tmp_path))
    with pytest.raises(SystemExit, match="no warehouse at .*run `make run` first"):
        cli.main(["status"])
