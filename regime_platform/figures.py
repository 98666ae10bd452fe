"""How a result is shown to a person: figures as PNG files and inline images, frames as markdown tables.

The one route from a matplotlib figure to the Dagster UI: :func:`render` gives the full-size file (150 dpi),
:func:`inline_png` an image kept under ~150 KB by lowering the resolution from 100 dpi when needed (metadata
images live in the event log), and :func:`markdown_image` embeds it base64 in markdown (Dagster has no image
metadata type). :func:`show` does all of it for a figure an asset keeps (its file and its inline image) and
closes the figure; the file itself is written by storage (an artifact :class:`~regime_platform.storage.Report`
or ``storage.write_bytes_atomic``). No Dagster here, and no file writes.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

INLINE_DPI = 100
FILE_DPI = 150
INLINE_MAX_BYTES = 150_000

__all__ = ["FILE_DPI", "INLINE_DPI", "INLINE_MAX_BYTES", "Shown", "close", "inline_markdown", "inline_png",
           "markdown_image", "markdown_table", "plain_log_axis", "plt", "render", "show"]


def render(fig: Figure, dpi: int = FILE_DPI) -> bytes:
    """The figure as PNG bytes at ``dpi`` (the full-size file)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def inline_png(fig: Figure, max_bytes: int = INLINE_MAX_BYTES, dpi: int = INLINE_DPI) -> bytes:
    """PNG bytes at `dpi`, lowered step by step (down to 40 dpi at most) until the image is under `max_bytes`."""
    data = render(fig, dpi)
    while len(data) > max_bytes and dpi > 40:
        dpi = int(dpi * 0.8)
        data = render(fig, dpi)
    return data


def markdown_image(alt: str, png: bytes) -> str:
    """`![alt](data:image/png;base64,…)`: the way to show a PNG in Dagster metadata (no image type exists)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def inline_markdown(fig: Figure, alt: str, max_bytes: int = INLINE_MAX_BYTES) -> str:
    """The figure as an inline-sized markdown image (:func:`inline_png`, then :func:`markdown_image`)."""
    return markdown_image(alt, inline_png(fig, max_bytes=max_bytes))


def close(fig: Figure) -> None:
    plt.close(fig)


@dataclass(frozen=True)
class Shown:
    """A figure as an asset keeps it: ``file`` (the PNG saved beside the asset) and ``inline`` (the PNG in its
    metadata, at most :data:`INLINE_MAX_BYTES`)."""

    file: bytes
    inline: bytes

    def markdown(self, alt: str) -> str:
        return markdown_image(alt, self.inline)


def show(fig: Figure, *, full_size_file: bool = True) -> Shown:
    """The figure's file PNG and inline PNG, then the figure is closed. The file is the full-size
    :func:`render`; with ``full_size_file=False`` it is the inline PNG itself (the explainability pages: the
    file a person opens is byte for byte the image the page shows)."""
    try:
        file = render(fig) if full_size_file else None
        inline = inline_png(fig)
    finally:
        close(fig)
    return Shown(inline if file is None else file, inline)


def plain_log_axis(ax) -> None:
    """Log scale with plain numbers (1.2, 2,500) instead of 1.2×10⁰."""
    formatter = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.4g}")
    ax.yaxis.set_major_formatter(formatter)
    ax.yaxis.set_minor_formatter(formatter)
    ax.tick_params(axis="y", which="minor", labelsize=7)


def markdown_table(frame: pl.DataFrame, float_digits: int = 4) -> str:
    """A frame as a markdown table; floats with ``float_digits`` significant digits, NULL as an empty cell."""
    cols = frame.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.iter_rows():
        cells = [f"{v:.{float_digits}g}" if isinstance(v, float) else ("" if v is None else str(v)) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
