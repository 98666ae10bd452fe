"""Markdown tables: how a result frame is shown to a person (in the UI's metadata, in reports)."""
from __future__ import annotations

import polars as pl


def markdown_table(frame: pl.DataFrame, float_digits: int = 4) -> str:
    """A frame as a markdown table; floats with ``float_digits`` significant digits, NULL as an empty cell."""
    cols = frame.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.iter_rows():
        cells = [f"{v:.{float_digits}g}" if isinstance(v, float) else ("" if v is None else str(v)) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
