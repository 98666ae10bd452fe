"""`market.baseline_comparison`: each model against each baseline and rule, paired on the same resampled days.

Economic measures (sharpe, ann_return, max_drawdown) against every baseline and rule that trades on the
backtest's dates (buy_and_hold, sma_200, vol_target, jump_signal, persistence, majority), from the bootstrap
draws the backtest already made (intervals.py: every strategy resampled with the same session indices).
Classification measures (macro_f1, balanced_accuracy) against the baselines that forecast a regime
(persistence, majority), over the target sessions every model and baseline scored, each session resampled the
same way for all. difference = model − baseline on the sample; for max_drawdown (≤ 0) a positive difference
is a shallower drawdown, so on every measure above zero means the model is better. No Dagster here.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from regime_platform.evaluation import intervals
from regime_platform.evaluation.backtest import RULES, HorizonBacktest
from regime_platform.evaluation.metrics import n_classes, scored_rows
from regime_platform.models import BASELINES

COMPARISON_SCHEMA = {"model": pl.Utf8, "baseline": pl.Utf8, "horizon": pl.Int32, "metric": pl.Utf8,
                     "difference": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
                     "share_below_zero": pl.Float64}
REFERENCES = (*RULES, *BASELINES)


def is_model(name: str) -> bool:
    return name not in REFERENCES


def _row(model: str, baseline: str, horizon: int, metric: str, d: intervals.PairedDifference) -> dict:
    def clean(v: float) -> float | None:
        return None if v is None or not np.isfinite(v) else float(v)

    return {"model": model, "baseline": baseline, "horizon": horizon, "metric": metric,
            "difference": clean(d.difference), "ci_low": clean(d.ci_low), "ci_high": clean(d.ci_high),
            "share_below_zero": clean(d.share_below_zero)}


def economic_rows(backtest: HorizonBacktest) -> list[dict]:
    """Every model against every baseline and rule on Sharpe, annual return and max drawdown."""
    sample = {r["strategy"]: r for r in backtest.table.iter_rows(named=True)}
    rows = []
    for model in (n for n in backtest.runs if is_model(n)):
        for baseline in (n for n in backtest.runs if not is_model(n)):
            for metric in intervals.STRATEGY_MEASURES:
                a, b = sample[model][metric], sample[baseline][metric]
                d = intervals.paired_difference(np.nan if a is None else a, np.nan if b is None else b,
                                                backtest.resampled[model][metric],
                                                backtest.resampled[baseline][metric])
                rows.append(_row(model, baseline, backtest.horizon, metric, d))
    return rows


def classification_rows(oos: pl.DataFrame, horizon: int, seed: int = intervals.SEED) -> list[dict]:
    """Every model against persistence and majority on macro-F1 and balanced accuracy, on the common sessions."""
    scored = scored_rows(oos).filter(pl.col("horizon") == horizon)
    if scored.is_empty():
        return []
    k = n_classes(scored)
    names = sorted(scored["model"].unique().to_list())
    per = {m: scored.filter(pl.col("model") == m).unique("as_of", keep="last") for m in names}
    common = sorted(set.intersection(*(set(f["as_of"].to_list()) for f in per.values())))
    if len(common) < 2:
        return []
    aligned = {m: f.filter(pl.col("as_of").is_in(common)).sort("as_of") for m, f in per.items()}
    truth = aligned[names[0]]["true_regime"].to_numpy()
    indices = intervals.cached_indices(len(common), seed)
    sample, resampled = {}, {}
    for m, f in aligned.items():
        predicted = f["predicted_regime"].to_numpy()
        sample[m] = intervals.classification_measures(intervals.confusion_stack(truth, predicted, k))
        resampled[m] = intervals.classification_measures(intervals.confusion_stack(truth, predicted, k, indices))
    rows = []
    for model in (m for m in names if is_model(m)):
        for baseline in (m for m in names if m in BASELINES):
            for metric in intervals.CLASSIFICATION_MEASURES:
                d = intervals.paired_difference(float(sample[model][metric][0]), float(sample[baseline][metric][0]),
                                                resampled[model][metric], resampled[baseline][metric])
                rows.append(_row(model, baseline, horizon, metric, d))
    return rows


def comparison_table(backtests: Mapping[int, HorizonBacktest], oos: pl.DataFrame,
                     seed: int = intervals.SEED) -> pl.DataFrame:
    """The `market.baseline_comparison` rows of every horizon."""
    rows = []
    for h, b in backtests.items():
        rows += economic_rows(b) + classification_rows(oos, h, seed)
    return pl.DataFrame(rows, schema=COMPARISON_SCHEMA).sort("horizon", "model", "baseline", "metric")


__all__ = ["COMPARISON_SCHEMA", "REFERENCES", "is_model", "economic_rows", "classification_rows",
           "comparison_table"]
