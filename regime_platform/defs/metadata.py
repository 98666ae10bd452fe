"""Small helpers that turn results into Dagster metadata a person can read in the UI."""
from __future__ import annotations

import dagster as dg
import polars as pl

from regime_platform.figures import markdown_table

__all__ = ["bullets", "markdown_table", "preview_md"]


def bullets(lines: list[str], empty: str = "none") -> dg.MetadataValue:
    """A markdown bullet list (``empty`` when there is nothing to list)."""
    return dg.MetadataValue.md("\n".join(f"- {line}" for line in lines) or empty)


def preview_md(frame: pl.DataFrame, rows: int = 5) -> dg.MetadataValue:
    """First and last rows as a markdown table."""
    shown = frame if frame.height <= 2 * rows else pl.concat([frame.head(rows), frame.tail(rows)])
    return dg.MetadataValue.md(markdown_table(shown))
