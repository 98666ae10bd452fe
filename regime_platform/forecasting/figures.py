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
        ax.text(0.5, 0.5, "no scored forecasts yet: a row is scored once the label at its target date has settled",
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


REGIME_COLORS = ("#4c9a2a", "#d9822b", "#c0392b", "#7d3c98", "#2e86c1")  # regime 0 (calm) … ; fills are light


def headline_figure(prices: pl.DataFrame, forecasts: pl.DataFrame, names: dict[int, str], risk_off: int | None,
                    title: str):
    """The last two years of price, shaded by the headline model's forecast regime; its risk-off probability beneath;
    each change of the forecast marked. ``prices``: date, adj_close; ``forecasts``: as_of, predicted_regime,
    p_risk_off, origin ("walk-forward" out-of-sample rows, then the "ledger" rows actually made day by day)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    if prices.height:
        top.plot(prices["date"].to_list(), prices["adj_close"].to_list(), color="black", lw=1.0, label="adjusted close")
    rows = forecasts.sort("as_of")
    dates, decided = rows["as_of"].to_list(), rows["predicted_regime"].to_list()
    shown: set[int] = set()
    start = 0
    for i in range(1, len(dates) + 1):  # one band per run of the same forecast regime
        if i == len(dates) or decided[i] != decided[start]:
            regime = int(decided[start])
            end = dates[i] if i < len(dates) else dates[-1]
            label = None if regime in shown else f"forecast: {names.get(regime, f'regime {regime}')}" + (
                " (risk-off: flat)" if regime == risk_off else "")
            for ax in (top, bottom):
                ax.axvspan(dates[start], end, color=REGIME_COLORS[regime % len(REGIME_COLORS)], alpha=0.18, lw=0,
                           label=label if ax is top else None)
            shown.add(regime)
            start = i
    changes = [dates[i] for i in range(1, len(dates)) if decided[i] != decided[i - 1]]
    for d in changes:
        top.axvline(d, color="#555555", lw=0.7, ls=":")
        bottom.axvline(d, color="#555555", lw=0.7, ls=":")
    if changes and prices.height:
        at = prices.filter(pl.col("date").is_in(changes))
        top.scatter(at["date"].to_list(), at["adj_close"].to_list(), marker="v", color="#333333", s=28, zorder=3,
                    label=f"forecast changes ({len(changes)})")
    if rows.height:
        bottom.plot(dates, rows["p_risk_off"].to_list(), color=REGIME_COLORS[(risk_off or 0) % len(REGIME_COLORS)],
                    lw=1.0)
        ledger_rows = rows.filter(pl.col("origin") == "ledger")
        if ledger_rows.height:
            first = ledger_rows["as_of"][0]
            for ax in (top, bottom):
                ax.axvline(first, color="#1f4e79", lw=1.4)
            top.annotate("ledger starts", (first, 1.0), xycoords=("data", "axes fraction"), xytext=(-4, -12),
                         textcoords="offset points", ha="right", fontsize=8, color="#1f4e79")
            bottom.scatter(ledger_rows["as_of"].to_list(), ledger_rows["p_risk_off"].to_list(), color="#1f4e79", s=14,
                           zorder=3)
    else:
        top.text(0.5, 0.5, "no forecasts of the headline model in these two years", ha="center", va="center",
                 transform=top.transAxes, fontsize=9)
    bottom.axhline(0.5, color="#888888", lw=0.7, ls="--")
    bottom.set_ylim(0, 1)
    off = names.get(risk_off, f"regime {risk_off}") if risk_off is not None else "risk-off"
    bottom.set_ylabel(f"P({off})", fontsize=9)
    top.set_ylabel("adjusted close", fontsize=9)
    top.set_title(title, fontsize=10)
    top.legend(fontsize=8, loc="upper left", ncol=2)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
