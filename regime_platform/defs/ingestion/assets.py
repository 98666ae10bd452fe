"""ingestion: daily OHLCV bars into market.ohlcv, one partition per XNYS session; check `ohlcv_quality`."""

import datetime as dt

import dagster as dg

from regime_platform import calendar, ingest, warehouse as wh
from regime_platform.defs.metadata import preview_md
from regime_platform.defs.partitions import session_partitions
from regime_platform.defs.resources import RegimeSettings, Warehouse
from regime_platform.sources import SAMPLE_SOURCE


def partition_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    window = context.partition_key_range
    return dt.date.fromisoformat(window.start), dt.date.fromisoformat(window.end)


@dg.asset(
    group_name="ingestion",
    partitions_def=session_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb",
    kinds={"duckdb", "polars"},
    description="Daily OHLCV bars of REGIME_TICKER (yfinance → Stooq → bundled sample), one row per session; "
                "adj_close is chain-linked so stored rows never change when new days arrive (DESIGN §3b).",
)
def ohlcv(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: RegimeSettings) -> dg.MaterializeResult:
    start, end = partition_dates(context)
    ticker = settings.ticker
    with warehouse.connect() as con:
        before = con.execute(
            "SELECT date FROM market.ohlcv WHERE ticker = ? AND date < ? ORDER BY date", [ticker, start]).pl()
        prev = con.execute(
            "SELECT date, close, adj_close, source FROM market.ohlcv WHERE ticker = ? AND date = ?",
            [ticker, calendar.previous_session(start)]).pl()
    plan = ingest.plan_ingest(start, end, before["date"].to_list(), prev.to_dicts()[0] if prev.height else None)
    context.log.info(f"{'full backfill' if plan.is_full_backfill else 'increment'} of {ticker} {start} … {end}: "
                     f"one request from {plan.fetch_start}")

    fetched = settings.source_chain().fetch(ticker, plan.fetch_start, end)
    for warning in fetched.warnings:
        context.log.warning(f"source fallback: {warning}")
    if fetched.source == SAMPLE_SOURCE:
        context.log.warning(f"serving the bundled SAMPLE: the S&P 500 index (^GSPC, to 2018-12-31) stands in for "
                            f"{ticker}; rows keep ticker={ticker} and say source={SAMPLE_SOURCE}.")
    result = ingest.build_rows(plan, fetched.frame, fetched.source, ticker, dt.datetime.now())
    for note in result.notes:
        context.log.warning(note)

    with warehouse.connect() as con:
        with wh.transaction(con):
            con.execute("DELETE FROM market.ohlcv WHERE ticker = ? AND date BETWEEN ? AND ?", [ticker, start, end])
            con.register("_rows", result.rows.to_arrow())
            con.execute("INSERT INTO market.ohlcv BY NAME SELECT * FROM _rows")
            if result.revisions.height:
                con.register("_revisions", result.revisions.to_arrow())
                con.execute("INSERT INTO market.ohlcv_revisions BY NAME SELECT * FROM _revisions")
        total = con.execute("SELECT count(*) FROM market.ohlcv WHERE ticker = ?", [ticker]).fetchone()[0]

    rows = result.rows
    return dg.MaterializeResult(metadata={
        "source": fetched.source,
        "is_sample": fetched.source == SAMPLE_SOURCE,
        "fallbacks": dg.MetadataValue.md("\n".join(f"- {w}" for w in fetched.warnings) or "none"),
        "mode": "full backfill" if plan.is_full_backfill else "chained increment",
        "rows_written": rows.height,
        "rows_stored_total": int(total),
        "first_date": str(rows["date"].min()),
        "last_date": str(rows["date"].max()),
        "last_adj_close": float(rows["adj_close"][-1]),
        "revisions_detected": result.revisions.height,
        "preview": preview_md(rows.drop("ingested_at")),
        "dagster/row_count": int(total),
    })


@dg.asset_check(asset=ohlcv, blocking=True, pool="duckdb",
                description="ERROR on nulls, non-positive prices, inconsistent bars, negative volume, duplicate "
                            "keys or a missing XNYS session; WARN on moves beyond 25 % / 10 sigmas and on vendor "
                            "revisions.")
def ohlcv_quality(warehouse: Warehouse, settings: RegimeSettings) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        stored = con.execute("SELECT * FROM market.ohlcv WHERE ticker = ? ORDER BY date", [settings.ticker]).pl()
        revisions = con.execute("SELECT * FROM market.ohlcv_revisions WHERE ticker = ?", [settings.ticker]).pl()
    report = ingest.quality_report(stored, revisions)
    severity = dg.AssetCheckSeverity.ERROR if report.errors else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        passed=report.passed and not report.warnings,
        severity=severity,
        metadata={
            "rows": report.rows,
            "errors": dg.MetadataValue.md("\n".join(f"- {e}" for e in report.errors) or "none"),
            "warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in report.warnings) or "none"),
        },
    )




