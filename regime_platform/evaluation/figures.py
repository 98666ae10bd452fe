"""Evaluation figures (matplotlib, Agg): confusion matrices, forecast vs truth, model comparison, reliability,
change timing and equity curves. Every function returns a matplotlib Figure built from plain arrays/frames;
:mod:`regime_platform.figures` turns it into a file and an inline image. No Dagster here.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from regime_platform.figures import plain_log_axis  # noqa: E402
from regime_platform.labels.names import regime_label  # noqa: E402

RULE_COLORS = {"buy_and_hold": "#222222", "sma_200": "#8c564b"}
BASELINE_STYLE = {"majority": ":", "persistence": "--"}


def regime_colors(k: int) -> list:
    cmap = plt.get_cmap("tab10")
    return [cmap(i) for i in range(max(k, 1))]


def model_color(name: str, names: Sequence[str]) -> object:
    if name in RULE_COLORS:
        return RULE_COLORS[name]
    cmap = plt.get_cmap("tab10")
    others = [n for n in names if n not in RULE_COLORS]
    return cmap(others.index(name) % 10 if name in others else 0)


def confusion_matrices(matrices: Mapping[str, np.ndarray], names: Mapping[int, str] | None = None,
                       title: str = "") -> Figure:
    """Per model: counts (left) and row-normalized (right, the recall of each true regime on the diagonal)."""
    models = list(matrices)
    cols = 2 * min(3, len(models))
    rows = int(np.ceil(len(models) / 3))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for n, model in enumerate(models):
        counts = np.asarray(matrices[model])
        k = counts.shape[0]
        normalized = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        for j, (values, what) in enumerate(((counts, "counts"), (normalized, "row share"))):
            ax = axes[n // 3, 2 * (n % 3) + j]
            ax.set_visible(True)
            ax.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
            for (r, c), v in np.ndenumerate(values):
                text = f"{int(v)}" if what == "counts" else f"{v:.2f}"
                ax.text(c, r, text, ha="center", va="center", fontsize=8,
                        color="white" if normalized[r, c] > 0.6 else "black")
            ax.set_xticks(range(k))
            ax.set_yticks(range(k))
            ax.set_xlabel("forecast regime", fontsize=8)
            ax.set_ylabel("true regime", fontsize=8)
            ax.tick_params(labelsize=8)
            ax.set_title(f"{model} ({what})", fontsize=9)
    legend = ", ".join(f"{r} = {n}" for r, n in sorted((names or {}).items()) if n)
    fig.suptitle((title or "Confusion matrices (rows: true regime)") + (f"; {legend}" if legend else ""), fontsize=11)
    fig.tight_layout()
    return fig


def forecast_vs_truth(target_dates: Sequence, truth: np.ndarray, forecasts: Mapping[str, np.ndarray],
                      price_dates: Sequence, prices: np.ndarray, names: Mapping[int, str] | None = None,
                      title: str = "") -> Figure:
    """One colored strip per model (and the truth on top) of the regime forecast for each target date; the
    price underneath, on a log scale, over the same dates."""
    strips = {"truth": np.asarray(truth, dtype=float)} | {m: np.asarray(v, dtype=float) for m, v in forecasts.items()}
    k = int(max(np.nanmax(v) for v in strips.values())) + 1
    colors = regime_colors(k)
    cmap = matplotlib.colors.ListedColormap(colors[:k])
    fig, (ax, ax_price) = plt.subplots(2, 1, figsize=(11, 1.2 + 0.45 * len(strips) + 2.2), sharex=True,
                                       gridspec_kw={"height_ratios": [0.45 * len(strips), 2.2]})
    x = matplotlib.dates.date2num(list(target_dates))
    edges = np.r_[x, x[-1] + 1] if len(x) else x
    grid = np.vstack([strips[name] for name in strips]).astype(float)
    ax.pcolormesh(edges, np.arange(len(strips) + 1), np.ma.masked_invalid(grid), cmap=cmap, vmin=-0.5, vmax=k - 0.5, shading="flat")
    for y in range(1, len(strips)):
        ax.axhline(y, color="white", lw=2)
    ax.set_yticks(np.arange(len(strips)) + 0.5)
    ax.set_yticklabels(list(strips), fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title or "Forecast vs true regime by target date", fontsize=11)
    handles = [matplotlib.patches.Patch(color=colors[r], label=regime_label(r, names)) for r in range(k)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, title="regime",
              title_fontsize=8, frameon=False)
    ax_price.plot(matplotlib.dates.date2num(list(price_dates)), prices, color="#333333", lw=0.9)
    ax_price.set_yscale("log")
    plain_log_axis(ax_price)
    ax_price.set_ylabel("adj. close (log)", fontsize=8)
    ax_price.tick_params(labelsize=8)
    ax_price.xaxis_date()
    ax_price.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def model_comparison(table: pl.DataFrame, title: str = "") -> Figure:
    """Four panels of horizontal bars (macro-F1, balanced accuracy, Sharpe, max drawdown): every model, the
    baselines and the rules on the same axes, each with its 90 % interval as an error bar where `table` has
    `<measure>_lo` / `_hi`. `table`: name, the measures (NULL where one does not apply, e.g. macro-F1 of
    buy-and-hold)."""
    panels = [("macro_f1", "macro-F1"), ("balanced_accuracy", "balanced accuracy"), ("sharpe", "Sharpe (√252)"),
              ("max_drawdown", "max drawdown")]
    names = table["name"].to_list()
    fig, axes = plt.subplots(1, 4, figsize=(13, 0.45 * len(names) + 1.6), sharey=True)
    y = np.arange(len(names))
    for ax, (column, label) in zip(axes, panels):
        def column_values(name: str) -> np.ndarray:
            if name not in table.columns:
                return np.full(len(names), np.nan)
            return np.array([np.nan if v is None else v for v in table[name].to_list()], dtype=float)

        values, low, high = column_values(column), column_values(f"{column}_lo"), column_values(f"{column}_hi")
        colors = [model_color(n, names) for n in names]
        ax.barh(y, np.nan_to_num(values), color=colors, alpha=0.85)
        has = np.isfinite(low) & np.isfinite(high) & np.isfinite(values)
        if has.any():  # the 90 % interval as an error bar from its low to its high end: a percentile interval
            # need not contain the point estimate (a short or lopsided test span), so it is not drawn around it
            ax.errorbar((low[has] + high[has]) / 2, y[has], xerr=(high[has] - low[has]) / 2, fmt="none",
                        ecolor="black", elinewidth=0.9, capsize=2.5)
        for yi, v, lo_, hi_ in zip(y, values, low, high):
            at = v if np.isnan(hi_) else (hi_ if v >= 0 else lo_)
            ax.text(0 if np.isnan(v) else at, yi, " n/a" if np.isnan(v) else f" {v:.2f} ", va="center",
                    ha="left" if np.isnan(v) or v >= 0 else "right", fontsize=8)
        ax.axvline(0, color="black", lw=0.6)
        ax.set_title(label, fontsize=10)
        ax.tick_params(labelsize=8)
        ax.grid(axis="x", alpha=0.3)
        finite = np.concatenate([values, low, high])
        finite = finite[np.isfinite(finite)]
        if finite.size:
            lo, hi = min(0.0, finite.min()), max(0.0, finite.max())
            pad = 0.25 * (hi - lo or 1)
            ax.set_xlim(lo - (pad if lo < 0 else 0), hi + (pad if hi > 0 else 0))
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(names, fontsize=9)
    axes[0].invert_yaxis()
    fig.suptitle(title or "Models vs baselines and rules", fontsize=11)
    fig.tight_layout()
    return fig


def reliability_diagram(bins: Mapping[str, pl.DataFrame], title: str = "") -> Figure:
    """Observed accuracy against mean top-class probability per confidence bin; the diagonal is perfect
    calibration, marker size grows with the bin's count."""
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfectly calibrated")
    names = list(bins)
    for model, frame in bins.items():
        if frame.is_empty():
            continue
        total = frame["count"].sum()
        ax.plot(frame["confidence"], frame["accuracy"], marker="o", lw=1.2, ls=BASELINE_STYLE.get(model, "-"),
                color=model_color(model, names), label=model, markersize=3)
        ax.scatter(frame["confidence"], frame["accuracy"], s=8 + 300 * frame["count"] / total,
                   color=model_color(model, names), alpha=0.35)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("mean forecast probability of the chosen regime")
    ax.set_ylabel("share of those forecasts that were right")
    ax.set_title(title or "Reliability diagram", fontsize=11)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def change_timing_plot(timing: pl.DataFrame, reference: str = "persistence", title: str = "") -> Figure:
    """Each true regime change a dot per model at the lead/lag of the call that held, in sessions (negative =
    called early; hollow = an earlier call had flipped back; 'never' at the right edge); persistence's median
    lag is the dashed line."""
    models = sorted(timing["model"].unique().to_list())
    fig, ax = plt.subplots(figsize=(10, 0.55 * max(len(models), 1) + 1.8))
    leads = timing["lead_sessions"].drop_nulls()
    right = float(leads.max()) if leads.len() else 10.0
    left = float(leads.min()) if leads.len() else -10.0
    never_x = right + max(3.0, 0.08 * (right - left))
    rng = np.random.default_rng(0)
    for y, model in enumerate(models):
        rows = timing.filter(pl.col("model") == model)
        lead = np.array([np.nan if v is None else v for v in rows["lead_sessions"].to_list()], dtype=float)
        flipped = np.array(rows["flipped_back"].to_list(), dtype=bool)
        jitter = rng.uniform(-0.18, 0.18, len(lead))
        called = np.isfinite(lead)
        color = model_color(model, models)
        ax.scatter(lead[called & ~flipped], y + jitter[called & ~flipped], s=18, color=color, alpha=0.8)
        ax.scatter(lead[called & flipped], y + jitter[called & flipped], s=18, facecolors="none", edgecolors=color)
        ax.scatter(np.full((~called).sum(), never_x), y + jitter[~called], s=18, marker="x", color=color)
        if called.any():
            ax.plot([np.median(lead[called])] * 2, [y - 0.35, y + 0.35], color="black", lw=2)
    ref = timing.filter(pl.col("model") == reference)["lead_sessions"].drop_nulls()
    if ref.len():
        ax.axvline(float(ref.median()), color="grey", ls="--", lw=1, label=f"{reference} median lag")
    ax.axvline(0, color="black", lw=0.6)
    ax.axvline(never_x - 0.5 * (never_x - right), color="lightgrey", lw=0.8)
    ax.set_yticks(range(len(models)))
    ax.set_yticklabels(models, fontsize=9)
    ax.invert_yaxis()
    ticks = [t for t in ax.get_xticks() if left - 1 <= t <= right]
    ax.set_xticks(ticks + [never_x])
    ax.set_xticklabels([f"{t:g}" for t in ticks] + ["never"], fontsize=8)
    ax.set_xlabel("sessions from the true change to the forecast of the new regime that held (negative = early)")
    handles = [matplotlib.lines.Line2D([], [], marker="o", ls="", color="grey", label="called, held"),
               matplotlib.lines.Line2D([], [], marker="o", ls="", markerfacecolor="none", color="grey",
                                       label="an earlier call flipped back"),
               matplotlib.lines.Line2D([], [], marker="x", ls="", color="grey", label="never called"),
               matplotlib.lines.Line2D([], [], color="black", lw=2, label="median")]
    if ref.len():
        handles.append(matplotlib.lines.Line2D([], [], color="grey", ls="--", label=f"{reference} median lag"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.set_title(title or "Regime-change timing", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def equity_curves(runs: Mapping[str, object], regime_dates: Sequence, regimes: np.ndarray,
                  names: Mapping[int, str] | None = None, title: str = "") -> Figure:
    """Equity (log) and drawdown of every strategy on shared dates, the true regime shaded behind both.

    `runs`: name → backtest.StrategyRun (dates, equity, drawdown)."""
    fig, (ax, ax_dd) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [2.2, 1]})
    labels = list(runs)
    regimes = np.asarray(regimes)
    k = int(regimes.max()) + 1 if regimes.size else 0
    colors = regime_colors(k)
    x_regime = matplotlib.dates.date2num(list(regime_dates))
    for axis in (ax, ax_dd):
        for r in range(k):
            axis.fill_between(x_regime, 0, 1, where=regimes == r, step="post", color=colors[r], alpha=0.13,
                              transform=axis.get_xaxis_transform(), linewidth=0)
    drawing_order = [n for n in runs if n in RULE_COLORS] + [n for n in runs if n not in RULE_COLORS]
    for z, name in enumerate(drawing_order):
        run = runs[name]
        x = matplotlib.dates.date2num(list(run.dates))
        style = BASELINE_STYLE.get(name, "-")
        lw = 2.2 if name in RULE_COLORS else 1.1
        ax.plot(x, run.equity, label=name, color=model_color(name, labels), ls=style, lw=lw, zorder=2 + z)
        ax_dd.plot(x, run.drawdown, color=model_color(name, labels), ls=style, lw=lw, zorder=2 + z)
    ax.set_yscale("log")
    plain_log_axis(ax)
    ax.set_ylabel("equity (start = 1, log)")
    ax_dd.set_ylabel("drawdown")
    ax_dd.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax_dd.xaxis_date()
    handles, legend_labels = ax.get_legend_handles_labels()
    handles += [matplotlib.patches.Patch(color=colors[r], alpha=0.3, label=f"true regime {regime_label(r, names)}")
                for r in range(k)]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    for axis in (ax, ax_dd):
        axis.grid(alpha=0.3)
        axis.tick_params(labelsize=8)
    ax.set_title(title or "Equity and drawdown", fontsize=11)
    fig.tight_layout()
    return fig
