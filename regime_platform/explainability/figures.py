"""Explainability figures (matplotlib, Agg backend): attribution heat maps and rankings, permutation importance,
method agreement, regime transitions, the regime timeline and refit stability. Every function returns a
matplotlib Figure; :func:`regime_platform.figures.show` turns it into the asset's file and inline image. No
Dagster here.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates  # noqa: E402
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from regime_platform.explainability.attributions import METHOD_LABELS, AttributionSet  # noqa: E402
from regime_platform.explainability.permutation import PermutationResult  # noqa: E402
from regime_platform.labels.names import regime_label  # noqa: E402

REGIME_COLORS = ["#4c9a2a", "#e0a030", "#c0392b", "#7d3c98", "#2e86c1", "#7f8c8d"]


def forecast_label(regime: int | None, names: dict[int, str] | None = None) -> str:
    """The windows an attribution is over: all of them (``None``), or those forecast ``regime``."""
    return "all windows" if regime is None else f"forecast {regime_label(regime, names)}"


# ---------------------------------------------------------------------------------------------- attributions
def attribution_heatmaps(attr: AttributionSet, names: dict[int, str] | None = None,
                         methods: Sequence[str] = ("saliency", "input_x_gradient")) -> Figure:
    """Features × lags heat maps of one model: a row per method, a column per regime (all windows first)."""
    regimes = attr.regimes()
    f, w = len(attr.feature_names), attr.window
    fig, axes = plt.subplots(len(methods), len(regimes), figsize=(3.6 * len(regimes) + 1.6, 0.26 * f * len(methods) + 1.6),
                             squeeze=False, sharey=True, layout="constrained")
    for i, method in enumerate(methods):
        vmax = max(float(attr.maps[method][r].max()) for r in regimes) or 1.0
        for j, regime in enumerate(regimes):
            ax = axes[i][j]
            image = ax.imshow(attr.maps[method][regime], aspect="auto", cmap="magma", vmin=0, vmax=vmax,
                              interpolation="nearest")
            ax.set_title(f"{METHOD_LABELS[method]}\n{forecast_label(regime, names)} (n={attr.sampled[regime]})",
                         fontsize=8)
            ax.set_yticks(range(f))
            ax.set_yticklabels(attr.feature_names, fontsize=7)
            ticks = list(range(0, w, 5))
            ax.set_xticks(ticks)
            ax.set_xticklabels([str(t) for t in ticks], fontsize=7)
            if i == len(methods) - 1:
                ax.set_xlabel("lag (sessions before t; 0 = the forecast day)", fontsize=7)
        fig.colorbar(image, ax=list(axes[i]), fraction=0.02, pad=0.01).ax.tick_params(labelsize=7)
    fig.suptitle(f"{attr.model}: mean |attribution| by feature and lag (probability of the forecast regime)",
                 fontsize=10)
    return fig


def feature_ranking_chart(sets: Sequence[AttributionSet],
                          methods: Sequence[str] = ("occlusion_feature", "saliency", "input_x_gradient")) -> Figure:
    """Ranked features per model (all windows): each method's scores normalised to sum 1, ordered by their mean."""
    fig, axes = plt.subplots(1, len(sets), figsize=(5.2 * len(sets), 0.3 * len(sets[0].feature_names) + 1.6),
                             squeeze=False, layout="constrained")
    for ax, attr in zip(axes[0], sets):
        shares = np.array([attr.feature_scores(m) / max(attr.feature_scores(m).sum(), 1e-300) for m in methods])
        order = np.argsort(shares.mean(axis=0))  # ascending: the top feature ends at the top of a barh
        y = np.arange(len(order))
        height = 0.8 / len(methods)
        for k, method in enumerate(methods):
            ax.barh(y + (k - (len(methods) - 1) / 2) * height, shares[k, order], height=height,
                    label=METHOD_LABELS[method])
        ax.set_yticks(y)
        ax.set_yticklabels([attr.feature_names[i] for i in order], fontsize=8)
        ax.set_xlabel("share of the method's total attribution", fontsize=8)
        ax.set_title(f"{attr.model}: features ranked (all windows)", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(axis="x", alpha=0.3)
    return fig


def permutation_chart(results: Sequence[PermutationResult]) -> Figure:
    """Mean drop of macro-F1 per feature with ± one standard deviation, and every repeat as a dot."""
    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 0.3 * len(results[0].feature_names) + 1.6),
                             squeeze=False, layout="constrained")
    for ax, res in zip(axes[0], results):
        ranking = res.ranking().reverse()
        index = {name: i for i, name in enumerate(res.feature_names)}
        y = np.arange(ranking.height)
        ax.barh(y, ranking["mean_drop"], xerr=ranking["std"], color="#5b8db8", alpha=0.85, capsize=2,
                label="mean ± std")
        for yi, feature in zip(y, ranking["feature"]):
            drops = res.by_feature[index[feature]]
            ax.scatter(drops, np.full(drops.size, yi), s=6, color="black", zorder=3)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_yticks(y)
        ax.set_yticklabels(ranking["feature"].to_list(), fontsize=8)
        ax.set_xlabel(f"drop in macro-F1 when shuffled ({res.n_repeats} repeats, dots)", fontsize=8)
        ax.set_title(f"{res.model}: permutation importance\n(macro-F1 {res.baseline_score:.3f} on {res.windows} windows)",
                     fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    return fig


def agreement_chart(ranks, top_k: int) -> Figure:
    """Feature × ranking matrix of ranks (1 = most important), top-k cells outlined by colour."""
    columns = [c for c in ranks.columns if c != "feature"]
    ordered = ranks.with_columns(mean_rank=np.mean([ranks[c].to_numpy() for c in columns], axis=0)).sort("mean_rank")
    matrix = np.array([ordered[c].to_numpy() for c in columns]).T.astype(float)
    fig, ax = plt.subplots(figsize=(1.1 * len(columns) + 3.0, 0.3 * ordered.height + 2.0), layout="constrained")
    ax.imshow(np.minimum(matrix, top_k + 1), cmap="YlGnBu_r", aspect="auto", vmin=1, vmax=top_k + 1)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] <= top_k / 2 else "black")
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels([c.replace(" · ", "\n") for c in columns], fontsize=7, rotation=0)
    ax.set_yticks(range(ordered.height))
    ax.set_yticklabels(ordered["feature"].to_list(), fontsize=8)
    ax.set_title(f"Feature rank by model and method (1 = most important; coloured = top {top_k})", fontsize=9)
    return fig


# ---------------------------------------------------------------------------------------------- regimes
def transition_heatmap(matrix: np.ndarray, names: dict[int, str] | None = None, title: str = "") -> Figure:
    k = matrix.shape[0]
    labels = [regime_label(i, names) for i in range(k)]
    fig, ax = plt.subplots(figsize=(1.3 * k + 2.2, 1.1 * k + 1.4), layout="constrained")
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{matrix[i, j]:.3f}", ha="center", va="center", fontsize=9,
                    color="white" if matrix[i, j] > 0.6 else "black")
    ax.set_xticks(range(k))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_yticks(range(k))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("to (next session)", fontsize=8)
    ax.set_ylabel("from", fontsize=8)
    ax.set_title(title or "Empirical regime transitions (share of next-session moves)", fontsize=9)
    return fig


def regime_timeline(dates: Sequence[dt.date], prices: np.ndarray, regimes: np.ndarray,
                    names: dict[int, str] | None = None, title: str = "") -> Figure:
    """The adjusted close (log scale) with the regime of each session as a coloured band beneath and behind it."""
    dates = np.asarray(dates, dtype="datetime64[D]")
    regimes = np.asarray(regimes, dtype=np.int64)
    k = int(regimes.max()) + 1
    cmap = ListedColormap(REGIME_COLORS[:k] if k <= len(REGIME_COLORS) else plt.get_cmap("tab10").colors[:k])
    fig, (ax, band) = plt.subplots(2, 1, figsize=(11, 4.2), sharex=True, gridspec_kw={"height_ratios": [6, 1]},
                                   layout="constrained")
    edges = np.r_[0, np.flatnonzero(np.diff(regimes)) + 1, regimes.size]
    for a, b in zip(edges[:-1], edges[1:]):
        right = dates[b] if b < dates.size else dates[-1] + np.timedelta64(1, "D")
        ax.axvspan(dates[a], right, color=cmap(regimes[a]), alpha=0.18, lw=0)
    ax.plot(dates, prices, color="black", lw=0.8)
    ax.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:,.0f}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_ylabel("adjusted close (log)", fontsize=8)
    ax.tick_params(which="both", labelsize=7)
    ax.set_title(title or "Regimes over the price", fontsize=9)
    band.imshow(regimes[None, :], aspect="auto", cmap=cmap, vmin=-0.5, vmax=k - 0.5, interpolation="nearest",
                extent=[matplotlib.dates.date2num(dates[0]), matplotlib.dates.date2num(dates[-1]), 0, 1])
    band.set_yticks([])
    band.xaxis_date()
    band.tick_params(labelsize=7)
    handles = [matplotlib.patches.Patch(color=cmap(i), label=regime_label(i, names))
               for i in range(k)]
    ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.9)
    return fig


def refit_stability_chart(folds, stored) -> Figure:
    """Per regime, across the walk-forward refits: annualised volatility, share of sessions and mean
    duration (lines), with the stored labels' value as a dashed line; agreement with the stored labels."""
    stats = [("annual_vol", "annualised vol"), ("share", "share of sessions"), ("duration_mean", "mean duration")]
    fig, axes = plt.subplots(1, len(stats) + 1, figsize=(15, 3.6), layout="constrained")
    fold_end = folds.select("fold", "test_year", "fit_end").unique().sort("fold")
    x = np.arange(fold_end.height)
    ticks = [str(y) if y is not None else f"to {d}" for y, d in zip(fold_end["test_year"], fold_end["fit_end"])]
    for ax, (col, label) in zip(axes, stats):
        for r in sorted(folds["regime"].unique().to_list()):
            part = folds.filter(folds["regime"] == r).sort("fold")
            color = REGIME_COLORS[r % len(REGIME_COLORS)]
            ax.plot(x, part[col], marker="o", ms=3, color=color, label=f"regime {r}")
            base = stored.filter(stored["regime"] == r)[col]
            if base.len():
                ax.axhline(float(base[0]), color=color, ls="--", lw=0.8)
        ax.set_title(f"{label} per refit (dashed: stored labels)", fontsize=8)
        ax.set_xticks(x)
        ax.set_xticklabels(ticks, fontsize=7, rotation=45)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    agreement = folds.select("fold", "agreement").unique().sort("fold")["agreement"]
    axes[-1].bar(x, agreement, color="#5b8db8")
    axes[-1].set_ylim(0, 1)
    axes[-1].set_title("agreement with the stored labels", fontsize=8)
    axes[-1].set_xticks(x)
    axes[-1].set_xticklabels(ticks, fontsize=7, rotation=45)
    axes[-1].tick_params(axis="y", labelsize=7)
    fig.supxlabel("labeler refit for the fold testing this year (fit on the sessions before it)", fontsize=8)
    return fig
