"""Small helpers that turn results into Dagster metadata a person can read in the UI."""
from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from regime_platform import figures
from regime_platform.figures import markdown_table
from regime_platform.storage.reports import Report

__all__ = ["bullets", "every_ticker_check", "every_ticker_description", "every_ticker_result", "markdown_table",
           "per_partition", "preview_md", "report_figure"]

# A run over more sessions than this is a history backfill (the daily job runs one; a missed week, a few).
BACKFILL_SESSIONS = 20


def bullets(lines: list[str], empty: str = "none") -> dg.MetadataValue:
    """A markdown bullet list (``empty`` when there is nothing to list)."""
    return dg.MetadataValue.md("\n".join(f"- {line}" for line in lines) or empty)


def report_figure(report: Report, directory: Path, name: str, fig, *, alt: str | None = None,
                  path_suffix: str = "_path", full_size_file: bool = True) -> dict:
    """Put ``fig`` into ``report`` as its file ``<name>.png`` (:func:`regime_platform.figures.show`) and return its
    inline image (``name``) and the path the file will have once the IO manager saves ``report`` into ``directory``
    (``<name><path_suffix>``: inside the report's generation) as metadata."""
    shown = figures.show(fig, full_size_file=full_size_file)
    report.figures[name] = shown.file
    return {name: dg.MetadataValue.md(shown.markdown(alt or name)),
            f"{name}{path_suffix}": dg.MetadataValue.path(str(report.figure_path(directory, name)))}


def preview_md(frame: pl.DataFrame, rows: int = 5) -> dg.MetadataValue:
    """First and last rows as a markdown table."""
    shown = frame if frame.height <= 2 * rows else pl.concat([frame.head(rows), frame.tail(rows)])
    return dg.MetadataValue.md(markdown_table(shown))


def every_ticker_description(what: str) -> str:
    """What an every-ticker check says it does; ``what``: which tickers it names."""
    return (f"ERROR (not blocking) naming each ticker of REGIME_TICKERS {what}, with the reason; the others' rows are "
            "stored and go on.")


def every_ticker_check(name: str, asset: str, what: str) -> dg.AssetCheckSpec:
    """The not-blocking check of a daily asset that holds every ticker: ERROR naming each ticker it could not do."""
    return dg.AssetCheckSpec(name, asset=asset, description=every_ticker_description(what))


def every_ticker_result(name: str, failed: dict[str, str], done: list[str], verb: str) -> dg.AssetCheckResult:
    """That check's result: the failed tickers' sentences, or which were all ``verb`` (e.g. "served")."""
    return dg.AssetCheckResult(check_name=name, passed=not failed, severity=dg.AssetCheckSeverity.ERROR,
                               description=" ".join(failed.values()) or f"every ticker was {verb} ({', '.join(done)}).",
                               metadata={"failed": bullets(list(failed.values()))})


def per_partition(context: dg.AssetExecutionContext, metadata: dict) -> dict:
    """The metadata of a daily asset's run as Dagster stores it: one copy in every partition's event (two on the
    SQLite instance). In a backfill of more than BACKFILL_SESSIONS sessions the tables and previews go to the run's log
    once and each partition keeps the numbers and sentences (4,779 copies of the tables were about 40 MB of
    .dagster/; docs/scaling.md)."""
    sessions = len(context.partition_keys)
    if sessions <= BACKFILL_SESSIONS:
        return metadata
    kept, moved = {}, []
    for key, value in metadata.items():
        text = value.value or "" if isinstance(value, dg.MarkdownMetadataValue) else ""
        if text.lstrip().startswith("|") or "\n|" in text:  # a markdown table; sentences and lists stay
            context.log.debug(f"{key} (this run's {sessions} sessions):\n{value.value}")  # the UI shows DEBUG
            moved.append(key)
        else:
            kept[key] = value
    if moved:
        kept["tables_in_run_log"] = (f"{', '.join(moved)}: in this run's log at DEBUG (Runs → this run), written "
                                     f"once for its {sessions} sessions rather than into each partition's event.")
    return kept
