"""ingestion: FRED and Fama–French series into market.macro (the same session partitions as ohlcv), point in time;
check `macro_quality`."""

import datetime as dt

import dagster as dg
import polars as pl

from regime_platform import storage as wh
from regime_platform.defs.ingestion.assets import partition_dates
from regime_platform.defs.metadata import bullets, markdown_table, per_partition, preview_md
from regime_platform.defs.partitions import daily_asset
from regime_platform.defs.resources import RegimeSettings, Warehouse
from regime_platform.ingestion import macro as rules
from regime_platform.ingestion import macro_sources as sources


def source_mode(source: str) -> str:
    """REGIME_SOURCE for the macro series: `sample` → the bundle, `auto` → FRED then the bundle, else FRED only."""
    return source if source in ("auto", "sample") else "fred"


@daily_asset(
    group_name="ingestion",
    kinds={"duckdb", "polars"},
    description="Macro series (REGIME_MACRO_SERIES from FRED through pandas-datareader, plus the Fama–French "
                "risk-free rate as the backtest's cash rate; offline the real series arch bundles) into market.macro, "
                "each row with the session it becomes usable from (a daily value the REGIME_MACRO_LAG-th session "
                "after its date; a monthly one after its month plus its publication lag). FRED's '.' is missing; "
                "gaps of up to 3 sessions are carried forward and flagged, never longer.",
)
def macro(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: RegimeSettings) -> dg.MaterializeResult:
    start, end = partition_dates(context)
    s = settings.settings()
    fetch_start = start - dt.timedelta(days=rules.REFETCH_DAYS)
    mode = source_mode(s.source)
    context.log.info(f"macro {fetch_start} … {end} (partitions from {start}, re-reading {rules.REFETCH_DAYS} days for "
                     f"late monthly values): {', '.join(s.macro_series)} from "
                     f"{'the bundled sample' if mode == 'sample' else 'FRED'} (REGIME_SOURCE={s.source})")
    answers = sources.fetch_series(list(s.macro_series), fetch_start, end, mode)
    for line in sources.said_once(answers):  # each source failure once, not once per series it stopped
        context.log.warning(line)
    now, built, failed = dt.datetime.now(), {}, {}
    for name, answer in answers.items():
        if isinstance(answer, sources.MacroSourceError):
            failed[name] = str(answer)
            continue
        try:
            built[name] = rules.build_rows(answer, s.macro_lag, now)
        except sources.MacroSourceError as exc:
            failed[name] = str(exc)
            context.log.warning(f"not stored: {failed[name]}")
    if not built:
        problem = " ".join(failed.values()) or f"no macro series to ingest for {start} … {end}."
        if s.macro != "off":
            raise sources.MacroSourceError(problem)
        # prices-only models (REGIME_MACRO=off) forecast without it: the daily run goes on, stored rows unchanged
        context.log.warning(f"no macro series stored for {start} … {end}; with REGIME_MACRO=off only the backtest's "
                            f"cash rate reads them, and it keeps the rows already stored: {problem}")
        return dg.MaterializeResult(metadata={"series": "none", "rows_written": 0,
                                              "not_stored": bullets(list(failed.values()) or [problem])})
    served = {n: b.rows["source"][0] for n, b in built.items()}
    if any(sources.is_sample(v) for v in served.values()):
        context.log.warning("serving the bundled SAMPLE for macro series: " + ", ".join(
            f"{n} ← {v}" for n, v in served.items() if sources.is_sample(v)) + "; rows say so in `source`"
            + (f"; not stored: {', '.join(failed)} (the page's not_stored says why)." if failed else "."))
    with warehouse.connect() as con:
        wh.write_macro(con, fetch_start, end, {n: b.rows for n, b in built.items()})
        stored = wh.macro_summary(con)
    per_series = pl.DataFrame([{
        "series": n, "frequency": sources.series_info(n).frequency, "unit": sources.series_info(n).unit,
        "source": served[n], "rows_written": b.rows.height, "missing_values": b.missing, "carried": b.carried,
        "gaps_left": len(b.gaps), "first_usable": str(b.rows["usable_from"].min()),
        "last_date": str(b.rows["date"].max())} for n, b in built.items()])
    first = next(iter(built.values())).rows
    return dg.MaterializeResult(metadata=per_partition(context, {
        "series": ", ".join(built),
        "source": ", ".join(sorted(set(served.values()))),
        "is_sample": any(sources.is_sample(v) for v in served.values()),
        "per_series": dg.MetadataValue.md(markdown_table(per_series)),
        "not_stored": bullets(list(failed.values())),
        "point_in_time": f"daily: usable from the {s.macro_lag}-th session after its date (REGIME_MACRO_LAG); "
                         "monthly: the first session after its month plus "
                         + ", ".join(f"{n} {sources.series_info(n).publication_lag}" for n in built
                                     if sources.series_info(n).frequency == "monthly") + " sessions",
        "rows_written": int(sum(b.rows.height for b in built.values())),
        "stored": dg.MetadataValue.md(markdown_table(stored)),
        "preview": preview_md(first.drop("ingested_at")),
        "dagster/row_count": int(stored["rows"].sum()),
    }))


@dg.asset_check(asset=macro, blocking=True, pool="duckdb",
                description="Every stored macro row: ERROR on duplicate keys, non-finite values, a usable_from other "
                            "than the point-in-time rule's (an earlier one is a look-ahead) or a carry past 3 "
                            "sessions; WARN on daily gaps left missing.")
def macro_quality(warehouse: Warehouse, settings: RegimeSettings) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        stored = wh.read_macro(con)
    if stored.is_empty():
        return dg.AssetCheckResult(passed=False, metadata={"problem": "market.macro is empty: materialize macro."})
    report = rules.quality_report(stored, settings.settings().macro_lag)
    return dg.AssetCheckResult(
        passed=not report.errors and not report.warnings,
        severity=dg.AssetCheckSeverity.ERROR if report.errors else dg.AssetCheckSeverity.WARN,
        metadata={"rows_per_series": dg.MetadataValue.json(report.rows), "errors": bullets(report.errors),
                  "warnings": bullets(report.warnings)})
