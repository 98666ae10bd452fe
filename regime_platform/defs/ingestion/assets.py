"""ingestion: daily OHLCV bars into market.ohlcv, one partition per XNYS session; check `ohlcv_quality`."""

import datetime as dt

import dagster as dg

from regime_platform import calendar
from regime_platform import storage as wh
from regime_platform.defs.metadata import bullets, preview_md
from regime_platform.defs.partitions import daily_asset
from regime_platform.defs.resources import RegimeSettings, Warehouse
from regime_platform.ingestion import bars as ingest
from regime_platform.ingestion.sources import is_sample, sample_stand_in


def partition_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    window = context.partition_key_range
    return dt.date.fromisoformat(window.start), dt.date.fromisoformat(window.end)


def ingest_bars(log: dg.DagsterLogManager, warehouse: Warehouse, settings: RegimeSettings, ticker: str,
                start: dt.date, end: dt.date) -> dict:
    """Sessions start … end of ``ticker`` into market.ohlcv: one request from the source chain, chain-linked to the
    stored previous session or a full backfill (ingestion.bars), fallbacks, the sample stand-in and vendor revisions
    warned about, rows and revisions written in one transaction. Returns the materialization metadata.

    The one ingestion path: `ohlcv` (REGIME_TICKER, a range of sessions) and the cluster's `ohlcv_by_ticker` (the
    ticker and session of its partition key) both call it."""
    with warehouse.connect() as con:
        before = wh.ohlcv_dates_before(con, ticker, start)
        prev = wh.ohlcv_row(con, ticker, calendar.previous_session(start))
    plan = ingest.plan_ingest(start, end, before, prev)
    log.info(f"{'full backfill' if plan.is_full_backfill else 'increment'} of {ticker} {start} … {end}: "
             f"one request from {plan.fetch_start}")

    fetched = settings.source_chain().fetch(ticker, plan.fetch_start, end)
    for warning in fetched.warnings:
        log.warning(f"source fallback: {warning}")
    if is_sample(fetched.source):
        log.warning(f"serving the bundled SAMPLE: {sample_stand_in(ticker)}; rows keep ticker={ticker} and say "
                    f"source={fetched.source}.")
    result = ingest.build_rows(plan, fetched.frame, fetched.source, ticker, dt.datetime.now())
    for note in result.notes:
        log.warning(note)

    with warehouse.connect() as con:
        wh.write_ohlcv(con, ticker, start, end, result.rows, result.revisions)
        total = wh.count_rows(con, "ohlcv", ticker)

    rows = result.rows
    return {
        "source": fetched.source,
        "is_sample": is_sample(fetched.source),
        "fallbacks": bullets(fetched.warnings),
        "mode": "full backfill" if plan.is_full_backfill else "chained increment",
        "rows_written": rows.height,
        "rows_stored_total": int(total),
        "first_date": str(rows["date"].min()),
        "last_date": str(rows["date"].max()),
        "last_adj_close": float(rows["adj_close"][-1]),
        "revisions_detected": result.revisions.height,
        "preview": preview_md(rows.drop("ingested_at")),
        "dagster/row_count": int(total),
    }


@daily_asset(
    group_name="ingestion",
    kinds={"duckdb", "polars"},
    description="Daily OHLCV bars of REGIME_TICKER (yfinance → Stooq → bundled sample), one row per session; "
                "adj_close is chain-linked so stored rows never change when new days arrive (docs/concepts.md: Point-in-time adjusted closes).",
)
def ohlcv(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: RegimeSettings) -> dg.MaterializeResult:
    start, end = partition_dates(context)
    return dg.MaterializeResult(metadata=ingest_bars(context.log, warehouse, settings, settings.ticker, start, end))


@dg.asset_check(asset=ohlcv, blocking=True, pool="duckdb",
                description="ERROR on nulls, non-positive prices, inconsistent bars, negative volume, duplicate "
                            "keys or a missing XNYS session; WARN on moves beyond 25 % / 10 sigmas and on vendor "
                            "revisions.")
def ohlcv_quality(warehouse: Warehouse, settings: RegimeSettings) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        stored = wh.read_ohlcv(con, settings.ticker)
        revisions = wh.read_revisions(con, settings.ticker)
    report = ingest.quality_report(stored, revisions)
    severity = dg.AssetCheckSeverity.ERROR if report.errors else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        passed=report.passed and not report.warnings,
        severity=severity,
        metadata={
            "rows": report.rows,
            "errors": bullets(report.errors),
            "warnings": bullets(report.warnings),
        },
    )
