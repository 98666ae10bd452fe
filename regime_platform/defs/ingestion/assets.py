"""ingestion: daily OHLCV bars of every configured ticker into market.ohlcv, one partition per XNYS session holding
every ticker; checks `ohlcv_quality` and `every_ticker_served`."""

import datetime as dt

import dagster as dg
import polars as pl

from regime_platform import calendar
from regime_platform import storage as wh
from regime_platform.defs.metadata import (
    bullets,
    every_ticker_description,
    every_ticker_result,
    markdown_table,
    per_partition,
    preview_md,
)
from regime_platform.defs.partitions import daily_asset
from regime_platform.defs.resources import RegimeSettings, Warehouse
from regime_platform.ingestion import bars as ingest
from regime_platform.ingestion.sources import SourceError, TransientSourceError, is_sample, sample_stand_in

# A transient source fault (a timeout, a refused connection, a failed DNS lookup, HTTP 429 or 5xx) that leaves no
# ticker served is retried after about 10 s, 30 s and 70 s (exponential backoff, ± 10 s of jitter); a permanent one
# (an unknown ticker, a missing key, malformed data) fails at once, as dg.Failure(allow_retries=False).
SOURCE_RETRY = dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


class TickerSelection(dg.Config):
    tickers: list[str] = []
    """Only these of REGIME_TICKERS (empty = every one): how a ticker added later is backfilled without rewriting the
    others' rows (`regime-platform run` sets it)."""


def partition_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    window = context.partition_key_range
    return dt.date.fromisoformat(window.start), dt.date.fromisoformat(window.end)


def selected_tickers(config: TickerSelection, settings: RegimeSettings) -> list[str]:
    configured = list(settings.settings().tickers)
    chosen = [t.strip().upper() for t in config.tickers if t.strip()]
    unknown = [t for t in chosen if t not in configured]
    if unknown:
        raise ValueError(f"run config tickers {unknown} are not in REGIME_TICKERS ({', '.join(configured)}); "
                         "add them to REGIME_TICKERS first.")
    return chosen or configured


def ingest_bars(log: dg.DagsterLogManager, warehouse: Warehouse, settings: RegimeSettings, tickers: list[str],
                start: dt.date, end: dt.date) -> tuple[dict, dict[str, str]]:
    """Sessions start … end of every ticker into market.ohlcv: one request per source for the list (the earliest
    start any ticker needs), each ticker chain-linked to its stored previous session or fully backfilled
    (ingestion.bars), fallbacks, the sample stand-in and vendor revisions warned about, every served ticker's rows
    and revisions written in one transaction. A ticker no source serves (or whose bars cannot be chained) fails
    alone: returns (metadata, {ticker: the sentence saying why})."""
    plans, failed = {}, {}
    with warehouse.connect() as con:
        for ticker in tickers:
            try:
                plans[ticker] = ingest.plan_ingest(start, end, wh.ohlcv_dates_before(con, ticker, start),
                                                   wh.ohlcv_row(con, ticker, calendar.previous_session(start)))
            except ingest.IngestError as exc:
                failed[ticker] = f"{ticker}: {exc}"
    fetch_start = min((p.fetch_start for p in plans.values()), default=start)
    modes = {t: "full backfill" if p.is_full_backfill else "chained increment" for t, p in plans.items()}
    log.info(f"{len(plans)} ticker(s) {start} … {end}: one request per source from {fetch_start} "
             f"({', '.join(f'{t} {m}' for t, m in modes.items())})")

    fetched = settings.source_chain().fetch_many(list(plans), fetch_start, end) if plans else {}
    now, written, sources, transient = dt.datetime.now(), {}, {}, []
    for ticker, answer in fetched.items():
        if isinstance(answer, SourceError):
            failed[ticker] = str(answer)
            transient += [ticker] if answer.transient else []
            continue
        for warning in answer.warnings:
            log.warning(f"source fallback for {ticker}: {warning}")
        if is_sample(answer.source):
            log.warning(f"serving the bundled SAMPLE: {sample_stand_in(ticker)}; rows keep ticker={ticker} and say "
                        f"source={answer.source}.")
        try:
            result = ingest.build_rows(plans[ticker], answer.frame, answer.source, ticker, now)
        except ingest.IngestError as exc:
            failed[ticker] = f"{ticker}: {exc}"
            continue
        for note in result.notes:
            log.warning(f"{ticker}: {note}")
        written[ticker], sources[ticker] = (result.rows, result.revisions), answer.source
    for sentence in failed.values():
        log.error(f"not ingested: {sentence}")
    if not written:  # nothing stored; a transient fault is retried (SOURCE_RETRY), a permanent one is not
        sentence = " ".join(failed.values()) or f"no ticker to ingest for {start} … {end}."
        if transient:
            raise TransientSourceError(sentence)
        raise dg.Failure(description=sentence, allow_retries=False)

    with warehouse.connect() as con:
        wh.write_ohlcv(con, start, end, written)
        totals = {t: wh.count_rows(con, "ohlcv", t) for t in written}
    summary = pl.DataFrame([{
        "ticker": t, "source": sources[t], "mode": modes[t], "rows_written": rows.height,
        "first_date": str(rows["date"].min()), "last_date": str(rows["date"].max()),
        "last_adj_close": round(float(rows["adj_close"][-1]), 4), "revisions": revisions.height,
        "rows_stored": totals[t]} for t, (rows, revisions) in written.items()])
    first_rows = next(iter(written.values()))[0]
    metadata = {
        "tickers": ", ".join(written),
        "source": ", ".join(sorted(set(sources.values()))),
        "is_sample": any(is_sample(s) for s in sources.values()),
        "per_ticker": dg.MetadataValue.md(markdown_table(summary)),
        "failed_tickers": bullets(list(failed.values())),
        "rows_written": int(summary["rows_written"].sum()),
        "first_date": str(first_rows["date"].min()),
        "last_date": str(first_rows["date"].max()),
        "revisions_detected": int(summary["revisions"].sum()),
        "preview": preview_md(first_rows.drop("ingested_at")),
        "dagster/row_count": int(sum(totals.values())),
    }
    return metadata, failed


@daily_asset(
    group_name="ingestion",
    kinds={"duckdb", "polars"},
    retry_policy=SOURCE_RETRY,
    description="Daily OHLCV bars of every ticker in REGIME_TICKERS (yfinance → Stooq → bundled sample, one request "
                "per source for the list), one row per (ticker, session); adj_close is chain-linked so stored rows "
                "never change when new days arrive (docs/concepts.md: Point-in-time adjusted closes).",
)
def ohlcv(context: dg.AssetExecutionContext, config: TickerSelection, warehouse: Warehouse,
          settings: RegimeSettings) -> dg.MaterializeResult:
    start, end = partition_dates(context)
    metadata, failed = ingest_bars(context.log, warehouse, settings, selected_tickers(config, settings), start, end)
    metadata["not_served"] = dg.MetadataValue.json(failed)  # what the every_ticker_served check reads
    return dg.MaterializeResult(metadata=per_partition(context, metadata))


# A check of its own, not a check_spec of ohlcv: `regime-platform run` runs the history without checks and then each
# check once (automation.history_jobs say why); it reads what the newest ohlcv materialization could not serve.
@dg.asset_check(asset=ohlcv, name="every_ticker_served", blocking=False,
                description=every_ticker_description("that no source could serve in the newest ohlcv materialization"))
def every_ticker_served(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    event = context.instance.get_latest_materialization_event(ohlcv.key)
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    failed = metadata["not_served"].value if "not_served" in metadata else {}
    served = metadata["tickers"].value.split(", ") if "tickers" in metadata else []
    return every_ticker_result("every_ticker_served", failed, served, "served")


@dg.asset_check(asset=ohlcv, blocking=True, pool="duckdb",
                description="Per ticker of REGIME_TICKERS with stored bars: ERROR on nulls, non-positive prices, "
                            "inconsistent bars, negative volume, duplicate keys or a missing XNYS session; WARN on "
                            "moves beyond 25 % / 10 sigmas and on vendor revisions.")
def ohlcv_quality(warehouse: Warehouse, settings: RegimeSettings) -> dg.AssetCheckResult:
    errors, warnings, rows = [], [], {}
    with warehouse.connect() as con:
        stored = {t: (wh.read_ohlcv(con, t), wh.read_revisions(con, t)) for t in settings.settings().tickers}
    for ticker, (bars, revisions) in stored.items():
        if bars.is_empty():
            continue
        report = ingest.quality_report(bars, revisions)
        errors += [f"{ticker}: {e}" for e in report.errors]
        warnings += [f"{ticker}: {w}" for w in report.warnings]
        rows[ticker] = report.rows
    if not rows:
        errors.append("market.ohlcv holds no bars of any ticker in REGIME_TICKERS: materialize ohlcv.")
    return dg.AssetCheckResult(
        passed=not errors and not warnings,
        severity=dg.AssetCheckSeverity.ERROR if errors else dg.AssetCheckSeverity.WARN,
        description="; ".join(errors + warnings) or f"{sum(rows.values())} stored rows pass every rule.",
        metadata={"rows": sum(rows.values()), "rows_per_ticker": dg.MetadataValue.json(rows),
                  "errors": bullets(errors), "warnings": bullets(warnings)},
    )
