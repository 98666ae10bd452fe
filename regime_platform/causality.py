"""Features verified causal by recomputation: truncate prices at a date, recompute, compare with what is stored."""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from regime_platform.features import FEATURE_COLUMNS, LOOKBACK_SESSIONS, compute_features

RELATIVE_TOLERANCE = 1e-12


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


def causality_problems(ohlcv: pl.DataFrame, stored: pl.DataFrame, dates: list[dt.date]) -> list[str]:
    """Recompute the stored rows of `dates` from truncated prices and list every difference."""
    wanted = stored.filter(pl.col("date").is_in(pl.Series(dates, dtype=pl.Date).implode()))
    return compare_rows(wanted.sort("date"), truncated_recompute(ohlcv, dates).sort("date"))
