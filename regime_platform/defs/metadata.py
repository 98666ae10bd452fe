"""Small helpers that turn results into Dagster metadata a person can read in the UI."""
from __future__ import annotations

import dagster as dg
import polars as pl


def markdown_table(frame: pl.DataFrame, float_digits: int = 4) -> str:
    cols = frame.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.iter_rows():
        cells = [f"{v:.{float_digits}g}" if isinstance(v, float) else ("" if v is None else str(v)) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def preview_md(frame: pl.DataFrame, rows: int = 5) -> dg.MetadataValue:
    """First and last rows as a markdown table."""
    shown = frame if frame.height <= 2 * rows else pl.concat([frame.head(rows), frame.tail(rows)])
    return dg.MetadataValue.md(markdown_table(shown))
