"""The ohlcv asset and its blocking quality check, materialized in-process on the bundled sample."""
from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from pathlib import Path

import dagster as dg

from regime_platform import calendar
from regime_platform.defs.ingestion.assets import every_ticker_served, ohlcv, ohlcv_quality
from regime_platform.defs.partitions import session_partitions_def
from regime_platform_tests.conftest import read_table

ROOT = Path(__file__).resolve().parents[2]


def run_range(resources, start: str, end: str, checks=(ohlcv_quality, every_ticker_served), raise_on_error=True):
    return dg.materialize([ohlcv, *checks], resources=resources, raise_on_error=raise_on_error,
                          tags={"dagster/asset_partition_range_start": start,
                                "dagster/asset_partition_range_end": end})


def failure_message(result) -> str:
    """The user-facing error of the first failed step, with its causes."""
    error = result.get_step_failure_events()[0].event_specific_data.error
    parts = []
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return " ".join(parts)


def test_partitions_are_exactly_the_xnys_sessions():
    from regime_platform import calendar

    keys = session_partitions_def(dt.date(2000, 1, 3)).get_partition_keys(
        current_time=dt.datetime(2019, 1, 1, 12, tzinfo=dt.timezone.utc))
    assert keys == [d.isoformat() for d in calendar.sessions("2000-01-03", "2019-01-02")]
    # end_offset=1: on a holiday the newest key is the next session, which has not closed yet.
    assert keys[-1] == "2019-01-02" and len(keys) == 4780


def test_backfill_is_one_run_with_source_recorded_and_idempotent(resources):
    result = run_range(resources, "2016-01-04", "2018-12-31")
    assert result.success
    mats = result.asset_materializations_for_node("ohlcv")
    assert len(mats) == 754  # one materialization event per session, all from one run
    meta = mats[0].metadata
    assert meta["source"].value == "sample:^GSPC" and meta["is_sample"].value is True
    assert meta["rows_written"].value == 754
    rows = read_table(resources, "SELECT count(*) n, count(DISTINCT date) d, min(source) s FROM market.ohlcv")
    assert rows.row(0) == (754, 754, "sample:^GSPC")
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["ohlcv_quality"].passed and checks["every_ticker_served"].passed
    # A second materialization of the same partitions replaces rows, never duplicates them.
    assert run_range(resources, "2016-01-04", "2018-12-31").success
    assert read_table(resources, "SELECT count(*) FROM market.ohlcv").item() == 754


def test_increment_chains_and_reproduces_the_full_backfill(resources, tmp_path):
    assert run_range(resources, "2018-01-02", "2018-06-29").success
    assert run_range(resources, "2018-07-02", "2018-07-31").success
    inc = read_table(resources, "SELECT date, adj_close FROM market.ohlcv ORDER BY date")
    assert inc.height == len(calendar.sessions("2018-01-02", "2018-07-31"))
    from dagster_duckdb import DuckDBResource

    from regime_platform.defs.resources import Warehouse

    other = {**resources, "warehouse": Warehouse(duckdb=DuckDBResource(database=str(tmp_path / "full.duckdb")))}
    assert run_range(other, "2018-01-02", "2018-07-31").success
    full = read_table(other, "SELECT date, adj_close FROM market.ohlcv ORDER BY date")
    assert inc["date"].to_list() == full["date"].to_list()
    assert max(abs(a - b) / b for a, b in zip(inc["adj_close"], full["adj_close"])) < 1e-12


def test_increment_after_a_gap_refuses_and_stores_nothing(resources):
    assert run_range(resources, "2018-01-02", "2018-01-31").success
    result = run_range(resources, "2018-03-01", "2018-03-05", raise_on_error=False)
    assert not result.success
    failure = failure_message(result)
    assert "first missing session: 2018-02-01" in failure
    assert read_table(resources, "SELECT max(date) FROM market.ohlcv").item() == dt.date(2018, 1, 31)


def test_sessions_no_source_serves_fail_clearly(resources):
    result = run_range(resources, "2018-12-27", "2019-01-03", raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert "first missing: 2019-01-02" in message
    assert read_table(resources, "SELECT count(*) FROM market.ohlcv").item() == 0


def test_qqq_offline_is_the_nasdaq_composite_and_says_so(resources):
    from regime_platform.defs.resources import RegimeSettings

    qqq = {**resources, "settings": RegimeSettings(data_dir=resources["settings"].data_dir, source="sample",
                                                   tickers=["QQQ"])}
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([ohlcv], resources=qqq, instance=instance,
                            tags={"dagster/asset_partition_range_start": "2018-12-03",
                                  "dagster/asset_partition_range_end": "2018-12-31"})
    assert result.success
    meta = result.asset_materializations_for_node("ohlcv")[0].metadata
    assert meta["source"].value == "sample:^IXIC" and meta["is_sample"].value is True
    rows = read_table(resources, "SELECT ticker, source, count(*) n, max(close) FILTER (date = '2018-12-31') last_close "
                                 "FROM market.ohlcv GROUP BY ALL")
    assert rows.rows() == [("QQQ", "sample:^IXIC", 19, 6635.279785)]  # the Nasdaq Composite's close, not SPY's
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert any("serving the bundled SAMPLE: the Nasdaq Composite index (^IXIC, 1999-01-04 … 2018-12-31) stands "
               "in for QQQ; rows keep ticker=QQQ and say source=sample:^IXIC." in w for w in warnings), warnings


def test_an_unknown_ticker_offline_fails_in_one_sentence_and_stores_nothing(resources):
    from regime_platform.defs.resources import RegimeSettings

    assert run_range(resources, "2018-12-03", "2018-12-31").success
    before = read_table(resources, "SELECT * FROM market.ohlcv ORDER BY ticker, date")
    iwm = {**resources, "settings": RegimeSettings(data_dir=resources["settings"].data_dir, source="sample",
                                                   tickers=["IWM"])}
    result = run_range(iwm, "2018-12-03", "2018-12-31", raise_on_error=False)
    assert not result.success
    assert ("the bundled offline sample has no IWM: it serves only stand-ins for SPY (the S&P 500 index, ^GSPC) "
            "and QQQ (the Nasdaq Composite index, ^IXIC), 1999-01-04 … 2018-12-31; go online, set REGIME_SOURCE=csv "
            "with REGIME_OHLCV_CSV pointing at your own IWM file, or use SPY or QQQ.") in failure_message(result)
    assert read_table(resources, "SELECT * FROM market.ohlcv ORDER BY ticker, date").equals(before)


def test_a_ticker_the_source_cannot_serve_fails_alone_and_the_others_go_on(resources):
    """SPY, IWM, QQQ offline: SPY and QQQ are stored (one transaction) and their features computed in the same run;
    every_ticker_served fails at ERROR naming IWM in one sentence, without blocking."""
    from regime_platform.defs.features.assets import features
    from regime_platform.defs.resources import RegimeSettings

    three = {**resources, "settings": RegimeSettings(data_dir=resources["settings"].data_dir, source="sample",
                                                     tickers=["SPY", "IWM", "QQQ"])}
    result = dg.materialize([ohlcv, features, ohlcv_quality, every_ticker_served], resources=three, raise_on_error=False,
                            tags={"dagster/asset_partition_range_start": "2018-06-01",
                                  "dagster/asset_partition_range_end": "2018-12-31"})
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    served = checks["every_ticker_served"]
    assert not served.passed and served.severity == dg.AssetCheckSeverity.ERROR
    assert served.description.startswith("no source could serve IWM 2018-06-01…2018-12-31: sample failed: "
                                         "the bundled offline sample has no IWM")
    assert checks["ohlcv_quality"].passed
    stored = read_table(resources, "SELECT ticker, min(source) s, count(*) n FROM market.ohlcv GROUP BY 1 ORDER BY 1")
    assert stored.rows() == [("QQQ", "sample:^IXIC", 147), ("SPY", "sample:^GSPC", 147)]
    feats = read_table(resources, "SELECT ticker, count(*) n FROM market.features GROUP BY 1 ORDER BY 1")
    assert feats.rows() == [("QQQ", 147), ("SPY", 147)]
    meta = result.asset_materializations_for_node("ohlcv")[0].metadata
    assert meta["tickers"].value == "SPY, QQQ" and "IWM" in meta["failed_tickers"].value


def test_quality_check_blocks_on_corrupted_bars(resources):
    assert run_range(resources, "2018-01-02", "2018-01-31").success
    with resources["warehouse"].connect() as con:
        con.execute("UPDATE market.ohlcv SET low = high * 2 WHERE date = '2018-01-10'")
    result = dg.materialize([ohlcv_quality], resources=resources, selection=dg.AssetSelection.checks(ohlcv_quality),
                            raise_on_error=False)
    evaluation = result.get_asset_check_evaluations()[0]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "2018-01-10" in evaluation.metadata["errors"].value


def test_definitions_validate_from_the_cli(tmp_path):
    env = {"PATH": str(Path(sys.executable).parent), "DAGSTER_HOME": str(tmp_path), "HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml.template").read_text())
    out = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate",
                          "-w", "workspace.yaml"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "All code locations passed validation" in out.stderr + out.stdout


def test_every_warehouse_asset_and_check_joins_the_duckdb_pool():
    from regime_platform.definitions import defs

    loaded = defs() if callable(defs) else defs
    users = [d for d in [*loaded.assets, *loaded.asset_checks] if "warehouse" in d.required_resource_keys]
    assert ohlcv in users and ohlcv_quality in users
    assert {d.op.pool for d in users} == {"duckdb"}
