"""The live record of the forecast ledger as a figure (:func:`regime_platform.figures.show` makes its file and its
inline image)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402


def live_record_figure(record: pl.DataFrame, board: pl.DataFrame):
    """Each ticker's models' running hit rate over their scored forecasts, the walk-forward hit rate dashed beside."""
    fig, ax = plt.subplots(figsize=(8, 4))
    if record.is_empty():
        ax.text(0.5, 0.5, "no scored forecasts yet: rows are scored once the labels cover their target date",
                ha="center", va="center", fontsize=9, transform=ax.transAxes)
    several = record["ticker"].n_unique() > 1 if record.height else False
    for i, (ticker, model) in enumerate(sorted(record.select("ticker", "model").unique().rows())):
        color = f"C{i % 10}"
        rows = record.filter((pl.col("ticker") == ticker) & (pl.col("model") == model)).sort("as_of")
        ax.plot(rows["as_of"].to_list(), rows["running_hit_rate"].to_list(), marker="o", ms=3, color=color,
                label=f"{ticker} {model}" if several else model)
        wf = board.filter((pl.col("ticker") == ticker) & (pl.col("model") == model))["wf_hit_rate"]
        if wf.len() and wf[0] is not None and wf[0] == wf[0]:
            ax.axhline(float(wf[0]), color=color, ls="--", lw=0.8, alpha=0.7)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("running hit rate (live)")
    ax.set_xlabel("forecast made after the close of")
    ax.set_title("Forecast ledger: live hit rate (dashed: walk-forward hit rate)", fontsize=10)
    if not record.is_empty():
        ax.legend(fontsize=7, loc="lower left", ncol=3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
