"""How sure each figure is: stationary block-bootstrap intervals, paired differences, and a data-snooping test.

Resampling: `arch.bootstrap.StationaryBootstrap` over the out-of-sample sessions, mean block length 63 sessions
(a quarter). Daily returns are nearly uncorrelated, but what a strategy earns is not: its position, and the
regimes it follows, persist for weeks to months, and volatility clusters. Blocks of about a quarter keep a
typical regime spell, and the volatility around it, together; `optimal_block_length` on the strategies' net
returns suggests far shorter blocks (it sees only the returns' own weak autocorrelation) and gives narrower,
over-confident intervals. 1,000 resamples, a fixed seed, 90 % percentile intervals.

Paired: every strategy, model and baseline is resampled with the *same* index arrays, so a difference is
computed day for day on the same resampled sessions — the interval of `model − baseline` is far narrower
than the two intervals side by side suggest when both ride the same market.

The best of N: Hansen's Superior Predictive Ability test (`arch.bootstrap.SPA`, same bootstrap) asks whether
any of the N model strategies beats a benchmark once the selection of the best is accounted for. Loss: minus
the day's net return divided by the strategy's own standard deviation over the span, so a strategy's mean
loss is −Sharpe / √252 — a loss that rewards risk-adjusted return, not raw return.

Pure numpy, no Dagster.
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from regime_platform.calendar import SESSIONS_PER_YEAR, SQRT_SESSIONS_PER_YEAR

MEAN_BLOCK = 63
RESAMPLES = 1000
LEVEL = 0.90
SEED = 20_240_601
STRATEGY_MEASURES = ("sharpe", "ann_return", "max_drawdown")
CLASSIFICATION_MEASURES = ("macro_f1", "balanced_accuracy")


def method_sentence(resamples: int = RESAMPLES, block: int = MEAN_BLOCK, level: float = LEVEL) -> str:
    """The one sentence every page and report prints beside an interval."""
    return (f"{level * 100:.0f} % intervals: stationary block bootstrap (arch), mean block {block} sessions, "
            f"{resamples:,} resamples; differences paired on the same resampled days.")


def resampled_indices(n: int, resamples: int = RESAMPLES, block: int = MEAN_BLOCK, seed: int = SEED) -> np.ndarray:
    """(resamples, n) session indices drawn by the stationary bootstrap; the same arrays serve every strategy."""
    from arch.bootstrap import StationaryBootstrap

    if n < 2:
        raise ValueError(f"{n} out-of-sample session(s): too few to bootstrap an interval; a longer history gives "
                         "the walk-forward more test sessions.")
    bootstrap = StationaryBootstrap(min(block, max(1, n // 2)), np.arange(n), seed=seed)
    return np.vstack([data[0][0] for data in bootstrap.bootstrap(resamples)])


@functools.lru_cache(maxsize=8)
def cached_indices(n: int, seed: int = SEED) -> np.ndarray:
    """resampled_indices(n) kept for reuse: the models of one horizon share their session count, and so their draws."""
    return resampled_indices(n, seed=seed)


def strategy_measures(returns: np.ndarray, cash: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Sharpe, ann_return and max_drawdown of each row of net daily returns (the conventions of backtest.performance).

    `returns`: (..., n); `cash`: the cash return of the same sessions (None: 0 %). Sharpe = mean / std (ddof=1) of
    returns − cash × √252; ann_return geometric over 252 sessions; max_drawdown the worst equity / running peak − 1,
    the peak starting at 1."""
    r = np.atleast_2d(np.asarray(returns, dtype=float))
    n = r.shape[-1]
    excess = r if cash is None else r - np.atleast_2d(np.asarray(cash, dtype=float))
    std = excess.std(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(std > 0, excess.mean(axis=-1) / std * SQRT_SESSIONS_PER_YEAR, np.nan)
    log_equity = np.cumsum(np.log1p(r), axis=-1)
    ann_return = np.expm1(log_equity[..., -1] * SESSIONS_PER_YEAR / n)
    peak = np.maximum(np.maximum.accumulate(log_equity, axis=-1), 0.0)
    max_drawdown = np.expm1((log_equity - peak).min(axis=-1))
    return {"sharpe": sharpe, "ann_return": ann_return, "max_drawdown": max_drawdown}


def confusion_stack(y_true: np.ndarray, y_pred: np.ndarray, k: int, indices: np.ndarray | None = None) -> np.ndarray:
    """Confusion counts (rows: truth, columns: forecast), one K × K matrix per resample (or one for the sample)."""
    codes = np.asarray(y_true, dtype=np.int64) * k + np.asarray(y_pred, dtype=np.int64)
    drawn = codes[None, :] if indices is None else codes[indices]
    offsets = (np.arange(drawn.shape[0]) * k * k)[:, None]
    counts = np.bincount((drawn + offsets).ravel(), minlength=drawn.shape[0] * k * k)
    return counts.reshape(drawn.shape[0], k, k).astype(float)


def classification_measures(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """macro-F1 and balanced accuracy of each confusion matrix, as scikit-learn defines them.

    macro-F1 averages F1 over the classes present in the truth or the forecast; balanced accuracy averages
    recall over the classes present in the truth."""
    c = confusion if confusion.ndim == 3 else confusion[None]
    tp = np.diagonal(c, axis1=1, axis2=2)
    support, forecast = c.sum(axis=2), c.sum(axis=1)
    present = (support + forecast) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(present, 2 * tp / (support + forecast), 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        macro_f1 = f1.sum(axis=1) / present.sum(axis=1)
        balanced = recall.sum(axis=1) / (support > 0).sum(axis=1)
    return {"macro_f1": macro_f1, "balanced_accuracy": balanced}


def interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central `level` percentile interval of the finite resampled values (NaN, NaN when none)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedDifference:
    """model − baseline on one measure: the sample difference, its interval and the share of resamples below 0."""

    difference: float
    ci_low: float
    ci_high: float
    share_below_zero: float

    @property
    def above_zero(self) -> bool:
        return np.isfinite(self.ci_low) and self.ci_low > 0

    @property
    def below_zero(self) -> bool:
        return np.isfinite(self.ci_high) and self.ci_high < 0


def paired_difference(sample_model: float, sample_baseline: float, resampled_model: np.ndarray,
                      resampled_baseline: np.ndarray, level: float = LEVEL) -> PairedDifference:
    """Paired on the same resampled days: the difference of the two statistics in every resample."""
    diff = np.asarray(resampled_model, dtype=float) - np.asarray(resampled_baseline, dtype=float)
    finite = diff[np.isfinite(diff)]
    low, high = interval(finite, level)
    below = float((finite < 0).mean()) if finite.size else float("nan")
    return PairedDifference(float(sample_model - sample_baseline), low, high, below)


def strategy_intervals(runs: Mapping[str, np.ndarray], indices: np.ndarray, level: float = LEVEL,
                       cash: np.ndarray | None = None) -> tuple[dict[str, dict[str, tuple[float, float]]], dict]:
    """For each strategy's net returns (same sessions): the interval of each measure, and the resampled values; the
    cash returns of those sessions (None: 0 %) are resampled on the same days, for Sharpe in excess of cash.

    Returns ({strategy: {measure: (lo, hi)}}, {strategy: {measure: resampled array}})."""
    drawn_cash = None if cash is None else np.asarray(cash, dtype=float)[indices]
    resampled = {name: strategy_measures(np.asarray(r, dtype=float)[indices], drawn_cash) for name, r in runs.items()}
    bounds = {name: {m: interval(values[m], level) for m in STRATEGY_MEASURES} for name, values in resampled.items()}
    return bounds, resampled


@dataclass(frozen=True)
class SelectionTest:
    """Hansen's SPA of N candidates against one benchmark: can the best of them be told from the benchmark?"""

    benchmark: str
    candidates: int
    best: str
    pvalue: float

    def sentence(self, level: float = LEVEL) -> str:
        alpha = 1.0 - level
        if self.pvalue < alpha:
            return (f"Hansen's SPA: the best of {self.candidates} models ({self.best}) beats {self.benchmark} on "
                    f"risk-adjusted return after accounting for the choice among them (p = {self.pvalue:.2f}).")
        return (f"Hansen's SPA: no model of the {self.candidates} can be told from {self.benchmark} on "
                f"risk-adjusted return once the choice of the best is accounted for (p = {self.pvalue:.2f}, "
                f"not below {alpha:.2f}).")


def risk_adjusted_loss(returns: np.ndarray) -> np.ndarray:
    """−r_t / std(r): a strategy's mean loss is −Sharpe / √252 (a flat strategy, std 0, loses 0 every day)."""
    r = np.asarray(returns, dtype=float)
    std = r.std(ddof=1)
    return -r / std if std > 0 else np.zeros_like(r)


def superior_predictive_ability(benchmark: str, runs: Mapping[str, np.ndarray], candidates: list[str],
                                resamples: int = RESAMPLES, block: int = MEAN_BLOCK,
                                seed: int = SEED) -> SelectionTest | None:
    """SPA (consistent p-value) of the candidate strategies against `benchmark` on the risk-adjusted loss."""
    from arch.bootstrap import SPA

    names = [c for c in candidates if c in runs]
    if not names or benchmark not in runs:
        return None
    losses = np.column_stack([risk_adjusted_loss(runs[c]) for c in names])
    spa = SPA(risk_adjusted_loss(runs[benchmark]), losses, block_size=block, reps=resamples,
              bootstrap="stationary", seed=seed)
    spa.compute()
    best = names[int(np.argmin(losses.mean(axis=0)))]
    return SelectionTest(benchmark, len(names), best, float(spa.pvalues["consistent"]))


__all__ = ["MEAN_BLOCK", "RESAMPLES", "LEVEL", "SEED", "STRATEGY_MEASURES", "CLASSIFICATION_MEASURES",
           "method_sentence", "resampled_indices", "cached_indices", "strategy_measures", "confusion_stack",
           "classification_measures", "interval", "PairedDifference", "paired_difference", "strategy_intervals",
           "SelectionTest", "risk_adjusted_loss", "superior_predictive_ability"]
