"""What each regime looks like and how stable its definition is across refits.

Builds on :mod:`regime_platform.labels.profile`, which owns the per-regime statistics (:func:`regime_statistics`:
sessions, share, mean and volatility of daily log returns, episodes, durations; :func:`transition_matrix`), and
adds what the explainability group shows:

* :func:`feature_statistics` — per regime and feature: mean and standard deviation (ddof=1);
* :class:`RefitFold`, :func:`spread_evenly` and :func:`refit_profiles` — for a generated labeler, the walk-forward
  folds' training spans (at most so many, evenly spread), the labeler refit on each one (as the evaluation does),
  that refit's statistics per regime and its agreement with the stored labels over the same span: how stable the
  regime definitions are across refits;
* :func:`long_statistics` — any of these as the long rows of market.regime_profiles.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from regime_platform.labels.profile import duration_statistics, regime_statistics, run_lengths, transition_matrix

__all__ = ["STAT_COLUMNS", "RefitFold", "duration_statistics", "feature_statistics", "long_statistics",
           "refit_profiles", "regime_statistics", "run_lengths", "spread_evenly", "transition_matrix"]


def feature_statistics(frame: pl.DataFrame, regimes: Sequence[int] | np.ndarray, features: Sequence[str],
                       n_regimes: int | None = None) -> pl.DataFrame:
    """Per regime and feature: mean and sample standard deviation over the sessions with a value."""
    regimes = np.asarray(regimes, dtype=np.int64)
    if frame.height != regimes.size:
        raise ValueError(f"{frame.height} feature rows for {regimes.size} regime labels")
    k = int(n_regimes if n_regimes is not None else regimes.max() + 1)
    data = frame.select(features).with_columns(pl.Series("regime", regimes))
    stats = (data.unpivot(index="regime", on=list(features), variable_name="feature")
             .drop_nulls("value").filter(pl.col("value").is_finite())
             .group_by("regime", "feature").agg(mean=pl.col("value").mean(), std=pl.col("value").std(ddof=1),
                                                 sessions=pl.len()))
    grid = pl.DataFrame({"regime": np.repeat(np.arange(k), len(features)).astype(np.int64),
                         "feature": list(features) * k})
    order = {f: i for i, f in enumerate(features)}
    return (grid.join(stats.with_columns(pl.col("regime").cast(pl.Int64)), on=["regime", "feature"], how="left")
            .with_columns(pl.col("feature").replace_strict(order).alias("_order"))
            .sort("regime", "_order").drop("_order"))


# ---------------------------------------------------------------------------------------------- refits
@dataclass(frozen=True)
class RefitFold:
    fold: int
    test_year: int | None
    train_target_end: dt.date


def spread_evenly(items: list, limit: int) -> tuple[list, bool]:
    """At most ``limit`` items, first and last kept, evenly spaced; and whether any was dropped."""
    if len(items) <= limit:
        return items, False
    picks = np.unique(np.round(np.linspace(0, len(items) - 1, limit)).astype(int))
    return [items[i] for i in picks], True


def refit_profiles(
    schedule: Sequence[RefitFold],
    fold_labels: Callable[[dt.date], tuple[list[dt.date], np.ndarray]],
    stored: pl.DataFrame,
    n_regimes: int,
) -> pl.DataFrame:
    """Statistics per (fold, regime) of the labeler refit on each fold's training span.

    ``fold_labels(train_target_end)`` returns (dates, regime ids) of the refit over its training span
    (e.g. the stored fold targets' ``fold_labels(end, end)`` restricted to ids ≥ 0). ``stored``: date,
    regime, adj_close of the stored labels. ``agreement`` = share of the span's sessions where the refit's
    id equals the stored id (1 = the same definition); ``agreement_regime`` = of the sessions the stored
    labels put in this regime, the share the refit puts there too.
    """
    rows = []
    for fold in schedule:
        dates, regimes = fold_labels(fold.train_target_end)
        span = pl.DataFrame({"date": dates, "refit": np.asarray(regimes, dtype=np.int64)}).filter(pl.col("refit") >= 0)
        joined = span.join(stored.select("date", "regime", "adj_close"), on="date", how="left").sort("date")
        stats = regime_statistics(joined["refit"].to_numpy(), joined["adj_close"].to_numpy(), n_regimes=n_regimes)
        agree = joined.filter(pl.col("regime").is_not_null())
        agreement = float((agree["regime"] == agree["refit"]).mean()) if agree.height else math.nan
        per_regime = [
            float((part["refit"] == r).mean()) if (part := agree.filter(pl.col("regime") == r)).height else math.nan
            for r in range(n_regimes)
        ]
        rows.append(stats.with_columns(
            pl.Series("agreement_regime", per_regime, dtype=pl.Float64),
            pl.lit(fold.fold).alias("fold"), pl.lit(fold.test_year).alias("test_year"),
            pl.lit(joined["date"][0]).alias("fit_start"), pl.lit(fold.train_target_end).alias("fit_end"),
            pl.lit(agreement).alias("agreement")))
    if not rows:
        raise ValueError("no walk-forward fold to refit the labeler on.")
    frame = pl.concat(rows, how="vertical_relaxed")
    return frame.select("fold", "test_year", "fit_start", "fit_end", "agreement",
                        *[c for c in frame.columns if c not in ("fold", "test_year", "fit_start", "fit_end", "agreement")])


STAT_COLUMNS = ("sessions", "share", "mean_daily_return", "daily_vol", "annual_return", "annual_vol", "episodes",
                "duration_mean", "duration_median", "duration_longest", "agreement", "agreement_regime")


def long_statistics(stats: pl.DataFrame, scope: str, fold: int | None = None,
                    fit_start: dt.date | None = None, fit_end: dt.date | None = None, *,
                    transitions: np.ndarray | None = None, features: pl.DataFrame | None = None) -> pl.DataFrame:
    """Regime statistics as long rows (scope, fold, fit_start, fit_end, regime, statistic, value); with
    ``transitions`` also ``transition_to_<j>`` (row = from), with ``features`` (feature_statistics) also
    ``<feature>_mean`` and ``<feature>_std``."""
    present = [c for c in STAT_COLUMNS if c in stats.columns]
    parts = [stats.select(pl.col("regime").cast(pl.Int64), *[pl.col(c).cast(pl.Float64) for c in present]).unpivot(
        index="regime", variable_name="statistic")]
    if transitions is not None:
        k = transitions.shape[0]
        parts.append(pl.DataFrame({"regime": np.repeat(np.arange(k), k).astype(np.int64),
                                   "statistic": [f"transition_to_{j}" for j in range(k)] * k,
                                   "value": transitions.ravel().astype(np.float64)}))
    if features is not None:
        for stat in ("mean", "std"):
            parts.append(features.select(pl.col("regime").cast(pl.Int64),
                                         (pl.col("feature") + f"_{stat}").alias("statistic"),
                                         pl.col(stat).cast(pl.Float64).alias("value")))
    long = pl.concat(parts)
    return long.select(
        pl.lit(scope).alias("scope"), pl.lit(fold, dtype=pl.Int32).alias("fold"),
        pl.lit(fit_start, dtype=pl.Date).alias("fit_start"), pl.lit(fit_end, dtype=pl.Date).alias("fit_end"),
        pl.col("regime").cast(pl.Int32), "statistic", pl.col("value").cast(pl.Float64))
