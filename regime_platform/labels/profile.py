"""Regime profiles: what each regime looks like (return, volatility, drawdown, duration) and how they switch."""
from __future__ import annotations

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


def regime_profile(frame: pl.DataFrame) -> RegimeProfile:
    """Per-regime statistics of a frame with date, adj_close, regime (and optionally regime_name)."""
    frame = frame.sort("date")
    regimes = frame["regime"].to_numpy().astype(int)
    p = frame["adj_close"].to_numpy().astype(float)
    r = np.r_[np.nan, np.diff(np.log(p))]
    drawdown = p / np.maximum.accumulate(p) - 1
    k = int(regimes.max()) + 1
    runs = run_lengths(regimes)
    names = names_by_id(frame) if "regime_name" in frame.columns else {}
    rows = []
    for i in range(k):
        mask = regimes == i
        ri = r[mask & np.isfinite(r)]
        lengths = [n for reg, n in runs if reg == i]
        rows.append({
            "regime": i, "name": regime_name(i, names),
            "share_of_days": float(mask.mean()),
            "mean_daily_return": float(ri.mean()) if ri.size else float("nan"),
            "annual_return": float(ri.mean() * SESSIONS_PER_YEAR) if ri.size else float("nan"),
            "annual_vol": float(ri.std(ddof=1) * SQRT_SESSIONS_PER_YEAR) if ri.size > 1 else float("nan"),
            "mean_drawdown": float(drawdown[mask].mean()) if mask.any() else float("nan"),
            "episodes": len(lengths),
            "mean_duration_days": float(np.mean(lengths)) if lengths else 0.0,
        })
    return RegimeProfile(pl.DataFrame(rows), transition_matrix(regimes, k))
