"""Features verified causal by recomputation: truncate prices at a date, recompute, compare.

A look-ahead (a feature that reads a later price) shows only where later prices existed when the value was
computed, so the newest rows alone can never reveal one. :func:`causality_problems` therefore checks dates
spread over the whole history (:func:`spread_dates`: most of them far from the end) and compares a recompute
from prices truncated at each date with (1) the stored row and (2) a recompute that sees the
``FUTURE_SESSIONS`` sessions after the date — so a look-ahead is caught even in rows that were stored when
they were the newest (a daily increment computes each day without tomorrow's price).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from regime_platform.features.compute import FEATURE_COLUMNS, LOOKBACK_SESSIONS, compute_features

RELATIVE_TOLERANCE = 1e-12
FUTURE_SESSIONS = 30


def compare_rows(stored: pl.DataFrame, recomputed: pl.DataFrame, columns: list[str] = FEATURE_COLUMNS,
                 tolerance: float = RELATIVE_TOLERANCE) -> list[str]:
    """Problems where two feature frames (same keys) differ: NULL pattern, or |a−b| > tol × max(1, |a|)."""
    joined = stored.join(recomputed, on=["date", "ticker"], how="full", suffix="__re", coalesce=True)
    problems: list[str] = []
    if joined.height != stored.height or joined.height != recomputed.height:
        problems.append(f"keys differ: {stored.height} stored rows vs {recomputed.height} recomputed rows")
    for col in columns:
        a = joined[col].to_numpy().astype(float)
        b = joined[f"{col}__re"].to_numpy().astype(float)
        null_a, null_b = np.isnan(a), np.isnan(b)
        if (null_a != null_b).any():
            day = joined["date"][int(np.argmax(null_a != null_b))]
            problems.append(f"{col}: NULL on {day} in one computation but not the other")
            continue
        both = ~null_a
        err = np.abs(a[both] - b[both]) / np.maximum(1.0, np.abs(a[both]))
        if err.size and err.max() > tolerance:
            day = joined["date"].filter(pl.Series(both))[int(np.argmax(err))]
            problems.append(f"{col}: stored value on {day} differs from a recompute by {err.max():.2e} (relative)")
    return problems


def truncated_recompute(ohlcv: pl.DataFrame, dates: list[dt.date]) -> pl.DataFrame:
    """For each date d, the features of d computed from prices up to d only (and the lookback before it)."""
    ohlcv = ohlcv.sort("date")
    rows = []
    for day in dates:
        upto = ohlcv.filter(pl.col("date") <= day).tail(LOOKBACK_SESSIONS + 1)
        rows.append(compute_features(upto).filter(pl.col("date") == day))
    return pl.concat(rows) if rows else compute_features(ohlcv.head(0))


def with_future_recompute(ohlcv: pl.DataFrame, dates: list[dt.date], future: int = FUTURE_SESSIONS) -> pl.DataFrame:
    """For each date d, the features of d computed from its lookback AND the ``future`` sessions after it."""
    ohlcv = ohlcv.sort("date")
    all_dates = ohlcv["date"].to_list()
    rows = []
    for day in dates:
        i = all_dates.index(day)
        span = ohlcv.slice(max(0, i - LOOKBACK_SESSIONS), min(i, LOOKBACK_SESSIONS) + 1 + future)
        rows.append(compute_features(span).filter(pl.col("date") == day))
    return pl.concat(rows) if rows else compute_features(ohlcv.head(0))


def spread_dates(dates: list[dt.date], spread: int = 15, latest: int = 5) -> list[dt.date]:
    """``spread`` dates evenly over the whole history (the first and far from the end) plus the ``latest``."""
    dates = sorted(dates)
    if len(dates) <= spread + latest:
        return dates
    idx = {int(round(i)) for i in np.linspace(0, len(dates) - latest - 1, spread)}
    idx |= set(range(len(dates) - latest, len(dates)))
    return [dates[i] for i in sorted(idx)]


def causality_problems(ohlcv: pl.DataFrame, stored: pl.DataFrame, dates: list[dt.date]) -> list[str]:
    """Recompute the rows of `dates` from truncated prices; list every difference from the stored rows and from
    a recompute that sees later prices."""
    dates = sorted(set(dates) & set(ohlcv["date"].to_list()))
    wanted = stored.filter(pl.col("date").is_in(pl.Series(dates, dtype=pl.Date).implode())).sort("date")
    truncated = truncated_recompute(ohlcv, dates).sort("date")
    problems = [f"stored vs truncated prices: {p}" for p in compare_rows(wanted, truncated)]
    problems += [f"a feature reads later prices: {p}"
                 for p in compare_rows(with_future_recompute(ohlcv, dates).sort("date"), truncated)]
    return problems
