"""Per-fold feature selection on the training span's embargoed tail (REGIME_FEATURE_SELECTION=1).

Relevance with little redundancy, decided on the samples of one fold's validation tail only (the caller,
:func:`select_span_features`, hands them in; the tail every other in-span choice is
made on): every candidate feature's value at each tail sample's last session (scaled with the fold's scaler) is
ranked by its mutual information with the tail's targets (scikit-learn's ``mutual_info_classif``, seeded); walking
down that ranking, a feature is kept unless its absolute correlation with a feature already kept reaches
``max_correlation`` over the same rows, until ``max_features`` are kept. Nothing after the fold's last training target
is read, so a test year cannot shape the choice. The record says what was kept, what was dropped and why, and the
caller adds which samples were read (``no_leakage`` checks they lie in the tail). Pure numpy/scikit-learn, no Dagster.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.feature_selection import mutual_info_classif

from regime_platform.modeling.targets import FoldLabels
from regime_platform.modeling.training import Samples, TrainingConfig, TrainingSpan, prepare_span

MAX_FEATURES = 8
MAX_CORRELATION = 0.8


@dataclass
class FeatureSelection:
    selected: list[str]  # in the candidates' order
    relevance: dict[str, float]  # mutual information with the training targets, every candidate
    redundant: dict[str, str]  # dropped feature -> the kept feature it duplicates
    n_samples: int

    def record(self) -> dict[str, Any]:
        return {"selected": self.selected, "relevance": self.relevance, "redundant": self.redundant,
                "n_samples": self.n_samples, "max_features": MAX_FEATURES, "max_correlation": MAX_CORRELATION,
                "rule": "mutual information with the validation tail's targets, then drop |correlation| >= max_correlation"}


def select_features(
    last_rows: np.ndarray, y: np.ndarray, names: list[str], *, max_features: int = MAX_FEATURES,
    max_correlation: float = MAX_CORRELATION, seed: int = 0,
) -> FeatureSelection:
    """Choose features from ``last_rows`` (n_samples, n_candidates): each sample's features at its own session t,
    and ``y`` its target. See the module docstring."""
    last_rows = np.asarray(last_rows, dtype=np.float64)
    y = np.asarray(y)
    if last_rows.shape != (y.size, len(names)):
        raise ValueError(f"feature selection needs one row per training target and one column per name, got "
                         f"{last_rows.shape} for {y.size} targets and {len(names)} names")
    if max_features < 1:
        raise ValueError(f"max_features={max_features} must be at least 1")
    mi = mutual_info_classif(last_rows, y, random_state=seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(last_rows, rowvar=False), nan=0.0)
    order = sorted(range(len(names)), key=lambda j: (-mi[j], j))
    kept: list[int] = []
    redundant: dict[str, str] = {}
    for j in order:
        if len(kept) == max_features:
            break
        twin = next((k for k in kept if abs(corr[j, k]) >= max_correlation), None)
        if twin is None:
            kept.append(j)
        else:
            redundant[names[j]] = names[twin]
    return FeatureSelection(selected=[names[j] for j in sorted(kept)],
                            relevance={names[j]: round(float(mi[j]), 6) for j in range(len(names))},
                            redundant=redundant, n_samples=int(y.size))


def select_span_features(
    samples: Samples, span: TrainingSpan, labels: FoldLabels, config: TrainingConfig, where: str
) -> tuple[Samples, TrainingSpan, dict[str, Any] | None]:
    """With ``config.feature_selection``: choose the inputs on this training span's embargoed tail alone, as every other
    choice inside a span is made (epochs, capacity, dwell, temperature; :mod:`regime_platform.modeling.feature_selection`),
    and rebuild the span on them (scaler refit on the chosen columns); the record says which samples were read. A span
    without a tail, or whose tail targets hold one regime (mutual information cannot rank anything then), keeps every
    candidate and the record says why. Without ``config.feature_selection``: the samples and span unchanged, no record."""
    if not config.feature_selection:
        return samples, span, None
    rows = span.val_t
    if not rows.size or np.unique(span.y_val).size < 2:
        why = ("the training span is too short for a validation tail" if not rows.size else
               f"the validation tail's targets hold regime {int(span.y_val[0])} only")
        kept = FeatureSelection(list(samples.feature_names), {}, {}, 0).record()
        return samples, span, {**kept, **span.rows_read(rows[:0]), "note": f"{why}: every candidate kept"}
    chosen = select_features(span.Xs[rows], span.y_val, samples.feature_names, seed=config.seed)
    subset = samples.subset(chosen.selected)
    record = {**chosen.record(), **span.rows_read(rows), "note": ""}
    return subset, prepare_span(subset, span.train_t, labels, config, where), record
