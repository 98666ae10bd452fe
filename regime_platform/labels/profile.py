"""Per-regime statistics, written once: what each regime looks like (sessions, return, volatility, episodes,
duration) and how regimes switch; the labels' profile (plus drawdown) and explainability build on them."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from regime_platform.calendar import SESSIONS_PER_YEAR, SQRT_SESSIONS_PER_YEAR
from regime_platform.figures import markdown_table
from regime_platform.labels.names import names_by_id, regime_name


@dataclass
class RegimeProfile:
    table: pl.DataFrame
    transition_matrix: np.ndarray

    def to_markdown(self) -> str:
        lines = [markdown_table(self.table)]
        k = self.transition_matrix.shape[0]
        lines += ["", "Transition matrix (row = from, column = to, share of next-day moves):", "",
                  "| from \\ to | " + " | ".join(str(j) for j in range(k)) + " |", "|" + "---|" * (k + 1)]
        for i in range(k):
            lines.append(f"| {i} | " + " | ".join(f"{v:.3f}" for v in self.transition_matrix[i]) + " |")
        return "\n".join(lines)


def run_lengths(regimes: np.ndarray) -> list[tuple[int, int]]:
    """(regime, length) of each uninterrupted episode, in order."""
    runs: list[tuple[int, int]] = []
    for r in regimes:
        if runs and runs[-1][0] == r:
            runs[-1] = (r, runs[-1][1] + 1)
        else:
            runs.append((int(r), 1))
    return runs


def transition_matrix(regimes: np.ndarray, k: int) -> np.ndarray:
    counts = np.zeros((k, k))
    for a, b in zip(regimes[:-1], regimes[1:]):
        counts[a, b] += 1
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def log_returns(adj_close: Sequence[float] | np.ndarray) -> np.ndarray:
    """ln(P_t / P_{t−1}) per session (NaN on the first): the return of session t, in the regime of t."""
    p = np.asarray(adj_close, dtype=np.float64)
    return np.r_[np.nan, np.diff(np.log(p))]


def duration_statistics(regimes: Sequence[int] | np.ndarray, n_regimes: int) -> dict[int, dict[str, float]]:
    """Per regime: episodes, mean / median / longest duration in sessions (0 when the regime never occurs)."""
    runs = run_lengths(np.asarray(regimes, dtype=np.int64))
    out = {}
    for r in range(n_regimes):
        lengths = [n for reg, n in runs if reg == r]
        out[r] = {
            "episodes": len(lengths),
            "duration_mean": float(np.mean(lengths)) if lengths else 0.0,
            "duration_median": float(np.median(lengths)) if lengths else 0.0,
            "duration_longest": int(max(lengths)) if lengths else 0,
        }
    return out


def regime_statistics(
    regimes: Sequence[int] | np.ndarray,
    adj_close: Sequence[float] | np.ndarray | None = None,
    *,
    n_regimes: int | None = None,
    names: Mapping[int, str] | None = None,
) -> pl.DataFrame:
    """One row per regime 0…K−1 over a contiguous run of sessions: regime, name, sessions, share (of sessions),
    mean_daily_return, daily_vol (of daily log returns, :func:`log_returns`), annual_return, annual_vol (the
    same annualised), episodes and duration_mean / duration_median / duration_longest (an episode = an
    uninterrupted run of sessions; the first and last runs are cut by the sample's ends and counted as they are)."""
    regimes = np.asarray(regimes, dtype=np.int64)
    if regimes.size == 0 or (regimes < 0).any():
        raise ValueError("regime statistics need a non-empty, gap-free sequence of regime ids ≥ 0")
    k = int(n_regimes if n_regimes is not None else regimes.max() + 1)
    returns = log_returns(adj_close) if adj_close is not None else np.full(regimes.size, np.nan)
    durations = duration_statistics(regimes, k)
    rows = []
    for r in range(k):
        mask = regimes == r
        ret = returns[mask & np.isfinite(returns)]
        rows.append({
            "regime": r,
            "name": regime_name(r, names),
            "sessions": int(mask.sum()),
            "share": float(mask.mean()),
            "mean_daily_return": float(ret.mean()) if ret.size else math.nan,
            "daily_vol": float(ret.std(ddof=1)) if ret.size > 1 else math.nan,
            "annual_return": float(ret.mean() * SESSIONS_PER_YEAR) if ret.size else math.nan,
            "annual_vol": float(ret.std(ddof=1) * SQRT_SESSIONS_PER_YEAR) if ret.size > 1 else math.nan,
            **durations[r],
        })
    return pl.DataFrame(rows)


PROFILE_COLUMNS = ("regime", "name", "share", "mean_daily_return", "annual_return", "annual_vol", "mean_drawdown",
                   "episodes", "duration_mean")


def regime_profile(frame: pl.DataFrame) -> RegimeProfile:
    """The labels' profile of a frame with date, adj_close, regime (and optionally regime_name): the
    :func:`regime_statistics` a person judges labels by, plus mean_drawdown (the mean distance from the running
    peak of the whole span on the regime's sessions), and the transition matrix."""
    frame = frame.sort("date")
    regimes = frame["regime"].to_numpy().astype(int)
    p = frame["adj_close"].to_numpy().astype(float)
    drawdown = p / np.maximum.accumulate(p) - 1
    names = names_by_id(frame) if "regime_name" in frame.columns else {}
    stats = regime_statistics(regimes, p, names=names)
    k = stats.height
    mean_drawdown = [float(drawdown[regimes == i].mean()) if (regimes == i).any() else float("nan") for i in range(k)]
    table = stats.with_columns(pl.Series("mean_drawdown", mean_drawdown, dtype=pl.Float64)).select(PROFILE_COLUMNS)
    return RegimeProfile(table, transition_matrix(regimes, k))
