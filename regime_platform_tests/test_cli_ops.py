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


def ledger_rows(as_of: dt.date, status: str, realized: int | None, ensemble: float = 0.7) -> pl.DataFrame:
    rows = []
    for model, probs in (("persistence", [0.0, 1.0]), ("lstm", [0.2, 0.8]), ("ensemble", [1 - ensemble, ensemble])):
        rows.append({"ticker": "SPY", "as_of": as_of, "target_date": ledger.target_session(as_of, 5), "horizon": 5, "model": model,
                     "predicted_regime": int(probs[1] > probs[0]), "probabilities": probs,
                     "model_version": f"{model}-2018-12-14-abcd1234", "price_source": "sample:^GSPC",
                     "status": status, "realized_regime": realized,
                     "labels_version": "jump-x" if status == "scored" else None, "known_regime": 1,
                     "known_labels_version": f"jump-{as_of}-x", "decision_note": None})
    return pl.DataFrame(rows, schema=ledger.LEDGER_SCHEMA)


SESSIONS = [D(2018, 12, 14), D(2018, 12, 17), D(2018, 12, 18), D(2018, 12, 19), D(2018, 12, 20), D(2018, 12, 21)]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("REGIME_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    wh.ensure_schema(con, ["ohlcv", "regime_forecasts"])
    for i, day in enumerate(SESSIONS):  # prices falling: the turbulent regime is the risk-off one
        con.execute("INSERT INTO market.ohlcv VALUES (?, 'SPY', 1, 1, 1, 1, ?, 1, 'sample:^GSPC', now())", [day, 100 - i])
        last = day == SESSIONS[-1]
        wh.write_forecasts(con, "SPY", day, ledger_rows(day, "pending" if last else "scored", None if last else 1,
                                                        ensemble=0.7 if i < 3 else 0.2 if i < 5 else 0.81))
    wh.ensure_schema(con, ["regime_labels"])
    for i, day in enumerate(SESSIONS):
        regime = 0 if i < 2 else 1
        con.execute("INSERT INTO market.regime_labels VALUES ('SPY', ?, ?, ?, ?, 'jump', NULL, NULL)",
                    [day, regime, regime, ["calm", "turbulent"][regime]])
    con.close()
    return tmp_path


def test_forecast_leads_with_todays_answer_then_every_model_baselines_last(data_dir, capsys):
    assert cli.main(["forecast"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("SPY 2018-12-21: known regime turbulent since 2018-12-18; ensemble forecasts turbulent for "
                        "2018-12-31 (t+5) p=0.81, runner-up calm 0.19; position FLAT (turbulent is the risk-off "
                        "regime); prices: OFFLINE sample: ^GSPC standing in for SPY (the S&P 500 index, bundled, "
                        "ends 2018).")
    table = lines[2:]
    assert table[0].split()[:6] == ["ticker", "model", "as_of", "target_date", "regime", "probability"]
    assert [row.split()[1] for row in table[2:]] == ["ensemble", "lstm", "persistence"]
    assert table[2].split()[:6] == ["SPY", "ensemble", "2018-12-21", "2018-12-31", "turbulent", "0.81"]
    assert table[4].split()[1:3] == ["persistence", "(baseline)"]


def test_forecast_history_as_csv_prints_a_header_and_n_rows_per_model(data_dir, capsys):
    import csv
    import io

    assert cli.main(["forecast", "--history", "5", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 5 * 3
    assert [r["model"] for r in rows[::5]] == ["ensemble", "lstm", "persistence"]
    ensemble = rows[:5]
    assert [r["as_of"] for r in ensemble] == [d.isoformat() for d in SESSIONS[1:]]
    assert [r["regime"] for r in ensemble] == ["turbulent", "turbulent", "calm", "calm", "turbulent"]
    assert json.loads(ensemble[-1]["probabilities"]) == pytest.approx([0.19, 0.81])
    assert ensemble[0]["price_source"] == "sample:^GSPC" and ensemble[0]["horizon"] == "5"


def test_forecast_json(data_dir, capsys):
    assert cli.main(["forecast", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["forecasts"]
    assert [r["model"] for r in rows] == ["ensemble", "lstm", "persistence"]
    assert rows[0]["probability"] == pytest.approx(0.81) and rows[0]["as_of"] == "2018-12-21"
    (head,) = out["headline"]
    assert (head["model"], head["regime"], head["position"], head["known_since"]) == (
        "ensemble", "turbulent", "flat", "2018-12-18")
    assert cli.main(["forecast", "--format", "json", "--history", "2"]) == 0
    assert len(json.loads(capsys.readouterr().out)["forecasts"]) == 2 * 3


def test_an_unknown_headline_model_says_what_to_set(data_dir, capsys, monkeypatch):
    monkeypatch.setenv("REGIME_HEADLINE_MODEL", "cnn")
    assert cli.main(["forecast"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "REGIME_HEADLINE_MODEL=cnn has no forecast of SPY for 2018-12-21: set it to one of ensemble, lstm, persistence.")


def test_export_writes_the_ledger_and_oos_rows_as_parquet_and_csv(data_dir, tmp_path, capsys):
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    wh.ensure_schema(con, ["oos_predictions"])
    con.execute("INSERT INTO market.oos_predictions VALUES ('SPY', 'jump-h5-x', 'lstm', 0, '2018-12-14', '2018-12-21', "
                "5, 1, [0.2, 0.8], 1, 0)")
    con.close()
    out = tmp_path / "export"
    assert cli.main(["export", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["oos_predictions.csv", "oos_predictions.parquet",
                                                      "regime_forecasts.csv", "regime_forecasts.parquet"]
    book = pl.read_parquet(out / "regime_forecasts.parquet")
    assert book.height == 3 * len(SESSIONS) and {"ticker", "horizon", "price_source", "probabilities"} <= set(book.columns)
    assert book.filter(pl.col("model") == "ensemble")["probabilities"][-1].to_list() == pytest.approx([0.19, 0.81])
    oos = pl.read_parquet(out / "oos_predictions.parquet")
    assert oos.select("ticker", "horizon", "price_source").row(0) == ("SPY", 5, "sample:^GSPC")
    assert oos["probabilities"][0].to_list() == [0.2, 0.8]
    text = (out / "regime_forecasts.csv").read_text().splitlines()
    assert text[0].startswith("ticker,as_of,target_date,horizon,model") and len(text) == 1 + 3 * len(SESSIONS)
    assert "(18 rows)" in capsys.readouterr().out


def test_status_shows_tables_and_the_scoreboard(data_dir, capsys):
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "market.ohlcv" in out and "2018-12-21" in out and "DAGSTER_HOME is not set" in out
    board = out.split("scoreboard")[1]
    lstm = next(line for line in board.splitlines() if line.startswith("SPY") and "lstm" in line)
    assert lstm.split()[:6] == ["SPY", "lstm", "5", "5", "1", "1.000"]  # five scored rows, predicted 1, realized 1


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
    assert (lstm["scored"], lstm["pending"], lstm["live_hit_rate"]) == (5, 1, 1.0)


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
