"""Permutation importance for the scikit-learn models (``random_forest``, ``logistic``): scikit-learn's ``permutation_importance`` scored by
macro-F1, ``n_repeats`` shuffles, through :class:`WindowPermutationAdapter`, which lets sklearn shuffle a
whole feature (every lag of it at once: method ``permutation``) or a whole session of the window (every
feature at once: method ``permutation_time``) across windows; value = mean drop of macro-F1, spread = its
standard deviation over the repeats.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from regime_platform.explainability.attributions import ALL_FEATURES, ATTRIBUTION_SCHEMA, sample_rows


# ---------------------------------------------------------------------------------------------- permutation
def _sklearn_bases():
    from sklearn.base import BaseEstimator, ClassifierMixin

    return ClassifierMixin, BaseEstimator


class WindowPermutationAdapter(*_sklearn_bases()):
    """A fitted :class:`~regime_platform.models.RegimeModel` seen by scikit-learn's ``permutation_importance``.

    sklearn shuffles the columns of a 2-D ``X``; our model reads 3-D windows. So ``X`` holds, per window
    and per group, the *row number of the window to take that group from*: column ``j`` of the identity
    matrix ``X[i, j] = i`` reproduces the windows, and when sklearn shuffles column ``j`` each window gets
    group ``j`` from another window. ``by="feature"``: a group is one feature over every lag;
    ``by="lag"``: one session of the window (lag 0 = the last) across every feature.
    """

    def __init__(self, model: Any, windows: np.ndarray, by: str = "feature") -> None:
        if by not in ("feature", "lag"):
            raise ValueError(f"by={by!r}; use 'feature' or 'lag'")
        self.model, self.windows, self.by = model, np.asarray(windows, dtype=np.float32), by
        self.classes_ = np.arange(model.n_classes)  # the model is fitted already; sklearn's scorer reads this

    def identity(self) -> np.ndarray:
        n, w, f = self.windows.shape
        groups = f if self.by == "feature" else w
        return np.repeat(np.arange(n, dtype=np.float64)[:, None], groups, axis=1)

    def fit(self, X, y=None) -> "WindowPermutationAdapter":  # sklearn requires it; the model is already fitted
        return self

    def assemble(self, X: np.ndarray) -> np.ndarray:
        idx = np.asarray(X).astype(np.int64)
        n, w, f = self.windows.shape
        out = np.empty((idx.shape[0], w, f), dtype=np.float32)
        if self.by == "feature":
            for j in range(f):
                out[:, :, j] = self.windows[idx[:, j], :, j]
        else:
            for lag in range(w):
                step = w - 1 - lag
                out[:, step, :] = self.windows[idx[:, lag], step, :]
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict(self.assemble(X))


@dataclass
class PermutationResult:
    """Permutation importance of one model: per feature and per lag, ``n_repeats`` drops of macro-F1 each."""

    model: str
    feature_names: list[str]
    window: int
    by_feature: np.ndarray  # (features, repeats)
    by_lag: np.ndarray  # (lags, repeats)
    baseline_score: float
    windows: int
    available: int
    n_repeats: int
    seconds: float

    def rows(self) -> pl.DataFrame:
        out: dict[str, list] = {c: [] for c in ATTRIBUTION_SCHEMA}
        items = [("permutation", name, None, self.by_feature[j]) for j, name in enumerate(self.feature_names)]
        items += [("permutation_time", ALL_FEATURES, lag, self.by_lag[lag]) for lag in range(self.window)]
        for method, feature, lag, drops in items:
            out["model"].append(self.model)
            out["method"].append(method)
            out["regime"].append(None)
            out["feature"].append(feature)
            out["lag"].append(lag)
            out["value"].append(float(drops.mean()))
            out["spread"].append(float(drops.std()))
            out["windows"].append(self.windows)
        return pl.DataFrame(out, schema=ATTRIBUTION_SCHEMA)

    def ranking(self) -> pl.DataFrame:
        """Features by mean macro-F1 drop, with the spread (std) and range over the repeats."""
        return pl.DataFrame({
            "feature": self.feature_names,
            "mean_drop": self.by_feature.mean(axis=1),
            "std": self.by_feature.std(axis=1),
            "min": self.by_feature.min(axis=1),
            "max": self.by_feature.max(axis=1),
        }).sort("mean_drop", descending=True)

    def top_features(self, k: int = 5) -> list[str]:
        return self.ranking()["feature"].head(k).to_list()

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "scoring": "macro-F1",
            "baseline_macro_f1": round(self.baseline_score, 4),
            "n_repeats": self.n_repeats,
            "windows_available": self.available,
            "windows_scored": self.windows,
            "seconds": round(self.seconds, 2),
            "top_features": self.top_features(),
            "top_lags": [int(i) for i in np.argsort(-self.by_lag.mean(axis=1), kind="stable")[:5]],
        }


def permutation_importances(
    model: Any,
    windows: np.ndarray,
    y: np.ndarray,
    feature_names: Sequence[str],
    *,
    name: str,
    n_classes: int,
    n_repeats: int = 5,
    max_windows: int = 500,
    seed: int = 0,
) -> PermutationResult:
    """scikit-learn ``permutation_importance`` of a fitted RegimeModel on ``windows`` with true targets ``y``,
    scored by macro-F1 over regimes 0…n_classes−1, by feature and by lag (module docstring)."""
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import f1_score, make_scorer

    started = time.perf_counter()
    windows = np.asarray(windows, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    if windows.ndim != 3 or windows.shape[0] != y.shape[0] or y.size == 0:
        raise ValueError(f"need non-empty windows (n, w, f) and one target each; got {windows.shape} and {y.shape}")
    available = int(y.size)
    keep = sample_rows(available, max_windows, seed)
    windows, y = windows[keep], y[keep]
    scorer = make_scorer(f1_score, average="macro", labels=list(range(n_classes)), zero_division=0)
    results = {}
    for by in ("feature", "lag"):
        adapter = WindowPermutationAdapter(model, windows, by=by)
        results[by] = permutation_importance(adapter, adapter.identity(), y, scoring=scorer,
                                             n_repeats=n_repeats, random_state=seed)
    base = float(f1_score(y, model.predict(windows), average="macro", labels=list(range(n_classes)),
                          zero_division=0))
    return PermutationResult(name, list(feature_names), windows.shape[1], results["feature"].importances,
                             results["lag"].importances, base, int(y.size), available, n_repeats,
                             time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------- agreement
