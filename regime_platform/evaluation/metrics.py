"""Classification metrics of the walk-forward forecasts, per model, horizon and fold (long format).

Plain numpy / scikit-learn / polars, no Dagster. The input is `market.oos_predictions`: one row per
model, fold and forecast date with the predicted regime, the class probabilities (index = regime id), the
true regime at the target date and the regime known at the forecast date. The output is the long table of
`market.model_metrics`: model, horizon, fold (None = all folds pooled), metric, value — a new metric is a new row.

Definitions (each the scikit-learn function where one exists):
- accuracy, balanced_accuracy (mean recall over the classes present in the truth), macro_f1 (unweighted mean
  F1 over the classes present in truth or forecast);
- recall_<id>, precision_<id>, f1_<id>, support_<id> for every regime id 0..K−1 (NULL when undefined: a
  regime never forecast has no precision, one absent from the truth no recall);
- brier: multiclass Brier score halved (mean over rows of Σ_k (p_k − 1[y=k])² / 2, so the binary case equals
  the usual (p − y)²) — :func:`brier`, the one definition: the audit and the forecast scoreboard call it too; log_loss (natural log, probabilities clipped by scikit-learn);
- ece: expected calibration error of the top-class probability, 10 equal-width bins, weighted by bin size;
- transition_count: rows whose true regime at the target date differs from the true regime at the forecast
  date (`prior_regime`: the truth at the session the row was made, read from the row that targets it) — a
  change of the true regime within the horizon, never the gap between the online and the hindsight label;
  transition_count_into_<id> / transition_recall_into_<id>: those rows whose target regime is <id>, and the
  share of them the model got right (with two regimes: into and out of the turbulent one); transition_recall:
  the worst of the per-direction recalls over the directions that occur, so a constant forecaster scores 0 and a
  model scores only as well as it calls changes in its weaker direction (the mean let "always calm" score 1/K,
  above every model of the default run); shown, never optimized — a model that flips often scores well on it;
- change_lead_median, change_called_share (pooled only, added from change_timing): the median lead/lag in
  sessions of the call of each new true regime that held (negative = early; a change never called counts as
  a miss, so the median is NULL once more than half are missed), and the share of changes called.
- macro_f1_lo/_hi, balanced_accuracy_lo/_hi (pooled only): the 90 % block-bootstrap interval (intervals.py).
"""
from __future__ import annotations

import warnings

import numpy as np
import polars as pl
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

from regime_platform.evaluation import intervals
from regime_platform.models import BASELINES

ECE_BINS = 10
METRIC_COLUMNS = ["model", "horizon", "fold", "metric", "value"]
METRIC_SCHEMA = {"model": pl.Utf8, "horizon": pl.Int32, "fold": pl.Int32, "metric": pl.Utf8, "value": pl.Float64}


def is_baseline(model: str) -> bool:
    return model in BASELINES


def n_classes(oos: pl.DataFrame) -> int:
    """K: the longest probability vector, or one more than the largest regime id seen anywhere."""
    width = max((len(p) for p in oos["probabilities"].to_list() if p is not None), default=0)
    ids = [v for c in ("predicted_regime", "true_regime") for v in oos[c].to_list() if v is not None]
    return max(width, (max(ids) + 1) if ids else 0)


def probability_matrix(probabilities: list, k: int) -> np.ndarray:
    """Rows of class probabilities padded to K columns (a missing vector becomes NaN)."""
    out = np.full((len(probabilities), k), np.nan)
    for i, p in enumerate(probabilities):
        if p is not None:
            out[i, : len(p)] = p
    return out


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-class ECE: Σ_b |B|/n · |accuracy(B) − mean confidence(B)| over equal-width confidence bins."""
    if len(y_true) == 0:
        return float("nan")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def reliability_bins(y_true: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS) -> pl.DataFrame:
    """Per confidence bin: mean top-class confidence, observed accuracy and count (the reliability diagram)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = [{"bin": b, "confidence": float(confidence[which == b].mean()), "accuracy": float(correct[which == b].mean()),
             "count": int((which == b).sum())} for b in range(bins) if (which == b).any()]
    return pl.DataFrame(rows, schema={"bin": pl.Int64, "confidence": pl.Float64, "accuracy": pl.Float64, "count": pl.Int64})


def brier(y_true: np.ndarray, probabilities, k: int | None = None) -> float:
    """The Brier score, defined once for the platform (model_metrics, the audit, the forecast scoreboard).

    Multi-class and halved, scikit-learn's convention (``brier_score_loss(..., scale_by_half=True)``): the mean over
    rows of Σ_k (p_k − 1[y = k])² / 2, so the binary case is the usual (p − y)². ``probabilities``: an (n, K) array or
    rows of class probabilities (index = regime id); a row shorter than K — a regime the model never saw — is padded
    with zeros; each row is normalised to sum to 1. K is at least ``k`` and one more than the largest true regime.
    NaN without rows.
    """
    y = np.asarray(y_true, dtype=int)
    if y.size == 0:
        return float("nan")
    if isinstance(probabilities, np.ndarray) and probabilities.ndim == 2:
        probs = probabilities.astype(np.float64, copy=False)
    else:
        rows = [np.asarray(p, dtype=np.float64) for p in probabilities]
        probs = np.zeros((len(rows), max(len(r) for r in rows)))
        for i, r in enumerate(rows):
            probs[i, : len(r)] = r
    width = max(k or 0, probs.shape[1], int(y.max()) + 1)
    if probs.shape[1] < width:
        probs = np.pad(probs, ((0, 0), (0, width - probs.shape[1])))
    probs = probs / probs.sum(axis=1, keepdims=True)
    return float(brier_score_loss(y, probs, labels=list(range(width)), scale_by_half=True))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, probs: np.ndarray, prior: np.ndarray,
                           k: int) -> dict[str, float]:
    """Every metric of one set of forecasts (rows whose true regime is known). NaN where undefined."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    out: dict[str, float] = {}
    if len(y_true) == 0:
        return out
    classes = list(range(k))
    out["accuracy"] = float(accuracy_score(y_true, y_pred))
    with warnings.catch_warnings():  # one class in a fold's truth and forecasts is a valid, if dull, case
        warnings.simplefilter("ignore", UserWarning)
        out["balanced_accuracy"] = float(balanced_accuracy_score(y_true, y_pred))
    out["macro_f1"] = float(f1_score(y_true, y_pred, average="macro", zero_division=0))
    # a regime never forecast (precision) or never true (recall) has an undefined score: NaN, stored as NULL
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=classes,
                                                                     zero_division=np.nan)
    for c in classes:
        out[f"precision_{c}"] = float(precision[c])
        out[f"recall_{c}"] = float(recall[c])
        out[f"f1_{c}"] = float(f1[c])
        out[f"support_{c}"] = float(support[c])
    if np.isfinite(probs).all():
        p = probs / probs.sum(axis=1, keepdims=True)
        out["brier"] = brier(y_true, probs, k)
        out["log_loss"] = float(log_loss(y_true, p, labels=classes))
        out["ece"] = expected_calibration_error(y_true, p)
    else:
        out["brier"] = out["log_loss"] = out["ece"] = float("nan")
    prior = np.asarray(prior, dtype=float)
    transition = np.isfinite(prior) & (prior != y_true)
    out["transition_count"] = float(transition.sum())
    recalls = []
    for c in classes:
        into = transition & (y_true == c)
        out[f"transition_count_into_{c}"] = float(into.sum())
        out[f"transition_recall_into_{c}"] = float((y_pred[into] == c).mean()) if into.any() else float("nan")
        if into.any():
            recalls.append(out[f"transition_recall_into_{c}"])
    out["transition_recall"] = float(np.min(recalls)) if recalls else float("nan")
    return out


def with_prior_regime(scored: pl.DataFrame) -> pl.DataFrame:
    """Add `prior_regime`: the true regime at each row's forecast date, from the same model's row that targets
    that session (NULL for the first `horizon` sessions of the out-of-sample span)."""
    truth = (scored.select("model", "horizon", pl.col("target_date").alias("as_of"),
                           pl.col("true_regime").alias("prior_regime"))
             .unique(["model", "horizon", "as_of"], keep="last"))
    return scored.join(truth, on=["model", "horizon", "as_of"], how="left")


def scored_rows(oos: pl.DataFrame) -> pl.DataFrame:
    """The forecasts whose target regime is known (a target past the labelled span has no truth yet)."""
    return oos.filter(pl.col("true_regime").is_not_null() & pl.col("predicted_regime").is_not_null())


def metrics_table(oos: pl.DataFrame, change_summary: dict[tuple[str, int], dict[str, float]] | None = None,
                  seed: int = intervals.SEED) -> pl.DataFrame:
    """Long rows (model, horizon, fold, metric, value) per fold and pooled (fold None), every model and horizon.

    `change_summary` maps (model, horizon) to the pooled change-timing metrics (change_timing.pooled_metrics).
    NaN values are stored as NULL.
    """
    scored = scored_rows(oos)
    if scored.is_empty():
        raise ValueError("market.oos_predictions holds no scored forecast (no row with a true regime): "
                         "materialize the model assets first.")
    k = n_classes(scored)
    scored = with_prior_regime(scored)
    rows: list[dict] = []

    def add(model: str, horizon: int, fold: int | None, part: pl.DataFrame) -> None:
        values = classification_metrics(
            part["true_regime"].to_numpy(), part["predicted_regime"].to_numpy(),
            probability_matrix(part["probabilities"].to_list(), k),
            part["prior_regime"].cast(pl.Float64).fill_null(np.nan).to_numpy(), k)
        for name, value in values.items():
            rows.append({"model": model, "horizon": horizon, "fold": fold, "metric": name,
                         "value": None if not np.isfinite(value) else value})

    for (model, horizon), group in scored.sort("model", "horizon", "fold", "as_of").group_by(
            ["model", "horizon"], maintain_order=True):
        add(model, int(horizon), None, group)
        for (fold,), part in group.group_by(["fold"], maintain_order=True):
            if fold is not None:
                add(model, int(horizon), int(fold), part)
        for metric, value in (change_summary or {}).get((model, int(horizon)), {}).items():
            rows.append({"model": model, "horizon": int(horizon), "fold": None, "metric": metric,
                         "value": None if value is None or not np.isfinite(value) else float(value)})
        for metric, (low, high) in interval_bounds(group, k, seed).items():
            rows += [{"model": model, "horizon": int(horizon), "fold": None, "metric": f"{metric}_{end}",
                      "value": None if not np.isfinite(v) else v} for end, v in (("lo", low), ("hi", high))]
    return pl.DataFrame(rows, schema=METRIC_SCHEMA)


def interval_bounds(scored: pl.DataFrame, k: int, seed: int = intervals.SEED) -> dict[str, tuple[float, float]]:
    """The 90 % block-bootstrap interval of macro-F1 and balanced accuracy of one model's scored rows (date order)."""
    rows = scored.sort("as_of")
    if rows.height < 2:
        return {m: (float("nan"), float("nan")) for m in intervals.CLASSIFICATION_MEASURES}
    confusion = intervals.confusion_stack(rows["true_regime"].to_numpy(), rows["predicted_regime"].to_numpy(), k,
                                          intervals.cached_indices(rows.height, seed))
    resampled = intervals.classification_measures(confusion)
    return {m: intervals.interval(resampled[m]) for m in intervals.CLASSIFICATION_MEASURES}


def pooled_summary(metrics: pl.DataFrame, horizon: int,
                   columns: tuple[str, ...] = ("accuracy", "balanced_accuracy", "macro_f1", "macro_f1_lo",
                                               "macro_f1_hi", "transition_recall", "transition_recall_into_0",
                                               "transition_recall_into_1", "brier", "ece", "change_lead_median",
                                               "change_called_share")) -> pl.DataFrame:
    """A model a row (pooled over folds) for one horizon, sorted by macro-F1, baselines marked with `baseline`."""
    pooled = metrics.filter(pl.col("fold").is_null() & (pl.col("horizon") == horizon) & pl.col("metric").is_in(columns))
    if pooled.is_empty():
        return pl.DataFrame()
    wide = pooled.pivot(on="metric", index="model", values="value")
    for c in columns:
        if c not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(c))
    wide = wide.select("model", *columns).with_columns(
        pl.col("model").is_in(list(BASELINES)).alias("baseline"))
    return wide.sort("macro_f1", descending=True, nulls_last=True)


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    return confusion_matrix(np.asarray(y_true, int), np.asarray(y_pred, int), labels=list(range(k)))


def confusion_by_model(scored: pl.DataFrame, models: list[str], k: int) -> dict[str, np.ndarray]:
    """model → K×K counts (rows: true regime, columns: forecast) over the scored rows given (one horizon)."""
    return {m: confusion_counts(g["true_regime"].to_numpy(), g["predicted_regime"].to_numpy(), k)
            for m in models for g in [scored.filter(pl.col("model") == m)]}


def reliability_by_model(scored: pl.DataFrame, models: list[str], k: int) -> dict[str, pl.DataFrame]:
    return {m: reliability_bins(g["true_regime"].to_numpy(), probability_matrix(g["probabilities"].to_list(), k))
            for m in models for g in [scored.filter(pl.col("model") == m)]}


def forecast_grid(scored: pl.DataFrame, models: list[str]) -> pl.DataFrame:
    """One row per target date (one horizon): the true regime and each model's forecast (NULL where none)."""
    by_target = scored.sort("target_date").unique(["model", "target_date"], keep="last", maintain_order=True)
    wide = by_target.pivot(on="model", index="target_date", values="predicted_regime")
    truth = by_target.unique("target_date", keep="first", maintain_order=True).select("target_date", "true_regime")
    return wide.join(truth, on="target_date", how="left").select("target_date", "true_regime", *models).sort("target_date")


# --- collapse: the original specification's failure mode (85 % accuracy that was one class) -------------

COLLAPSE_WARN_SHARE = 0.90
COLLAPSE_ERROR_SHARE = 0.98
COLLAPSE_RARITY = 0.5  # the other regimes forecast less than half as often as they are true


CONSTANT_BY_DESIGN = ("majority",)


def collapse_verdict(forecast_share: float, true_share: float) -> str:
    """WARN when one regime takes ≥ 90 % of the forecasts while the others are forecast less than half as often
    as they occur (1 − share ≤ ½ (1 − true share)); ERROR when that holds at ≥ 98 %; OK otherwise.

    Judged against the truth: 97 % forecast against 89 % true warns (3 % against 11 % for the rest); a model
    that tracks a truth of 92 % with 93 % stays quiet."""
    rare = (1.0 - forecast_share) <= COLLAPSE_RARITY * (1.0 - true_share)
    if rare and forecast_share >= COLLAPSE_ERROR_SHARE:
        return "ERROR"
    if rare and forecast_share >= COLLAPSE_WARN_SHARE:
        return "WARN"
    return "OK"


def collapse_findings(scored: pl.DataFrame, exempt: tuple[str, ...] = CONSTANT_BY_DESIGN) -> pl.DataFrame:
    """Per model and horizon: the most-forecast class, its share of forecasts, its true share, and a verdict
    (:func:`collapse_verdict`). The `majority` baseline forecasts one class by construction and is left out."""
    rows = []
    scored = scored.filter(~pl.col("model").is_in(list(exempt)))
    for (model, horizon), group in scored.group_by(["model", "horizon"], maintain_order=True):
        pred = group["predicted_regime"].to_numpy()
        true = group["true_regime"].to_numpy()
        ids, counts = np.unique(pred, return_counts=True)
        top = int(ids[counts.argmax()])
        share = float(counts.max() / len(pred))
        true_share = float((true == top).mean())
        rows.append({"model": model, "horizon": int(horizon), "top_class": top, "forecast_share": share,
                     "true_share": true_share, "verdict": collapse_verdict(share, true_share)})
    return pl.DataFrame(rows, schema={"model": pl.Utf8, "horizon": pl.Int64, "top_class": pl.Int64,
                                      "forecast_share": pl.Float64, "true_share": pl.Float64, "verdict": pl.Utf8}
                        ).sort("model", "horizon")
