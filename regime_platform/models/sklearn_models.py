"""scikit-learn models on summarized windows.

Each window (window, f) becomes 3·f numbers: the last row (the state at t), the window mean and the window
standard deviation (ddof=0) of every feature, in that order (``summary_feature_names`` gives the names).
Defaults are honest for imbalanced regimes: ``class_weight="balanced"`` (``class_weighting=True``), fixed
``random_state``. Saved with ``skops.io.dump`` and loaded with ``skops.io.load(path, trusted=[...])`` and an
explicit list of trusted type names — never pickle or joblib.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from regime_platform.models.base import RegimeModel, full_proba, oversample
from regime_platform.storage.files import atomic_path

MODEL_FILE = "model.skops"

# Types a saved model may contain beyond skops' defaults; anything else found in a file is refused.
TRUSTED_TYPES = [
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]


def summarize_windows(X: np.ndarray) -> np.ndarray:
    """(n, w, f) → (n, 3f): last row, window mean, window std (ddof=0)."""
    X = np.asarray(X, dtype=np.float64)
    return np.concatenate([X[:, -1, :], X.mean(axis=1), X.std(axis=1)], axis=1)


def summary_feature_names(feature_names: list[str]) -> list[str]:
    return [f"{n}_last" for n in feature_names] + [f"{n}_mean" for n in feature_names] + [
        f"{n}_std" for n in feature_names
    ]


def fit_counting_rows(estimator, Z: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None):
    """``estimator.fit(Z, y)`` (with ``sample_weight=`` when given) and the number of rows that ``fit`` call received — counted at the estimator's own call,
    so the training records read what scikit-learn fit on, not what a caller meant to hand it. Where the fitted
    estimator keeps its own count (a forest's ``_n_samples``) that count is returned instead."""
    fitted = estimator.fit(Z, y) if sample_weight is None else estimator.fit(Z, y, sample_weight=sample_weight)
    return fitted, int(getattr(fitted, "_n_samples", None) or np.shape(Z)[0])


class _SklearnModel(RegimeModel):
    kind = "scikitlearn"

    def _estimator(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit(self, X, y, X_val, y_val, log, sample_weight=None) -> None:
        Z = summarize_windows(X)
        n_given = len(y)
        Z, y, sample_weight = oversample(Z, y, sample_weight, self.params["oversampling"], self.params["seed"], log)
        self.estimator_, rows = fit_counting_rows(self._estimator(), Z, y, sample_weight)
        self.fit_info.update(n_fit_rows=rows, n_oversampled=int(len(y) - n_given))
        if log:
            log(f"fitted on {rows} rows × {Z.shape[1]} summary features")

    def _predict_proba(self, X, known_regime) -> np.ndarray:
        est = self.estimator_
        if hasattr(est, "n_jobs"):
            # a forest's threaded predict_proba sums tree outputs in a racy order (last-bit differences);
            # one job sums in tree order, so predictions are bit-for-bit reproducible
            est.set_params(n_jobs=1)
        return full_proba(est.predict_proba(summarize_windows(X)), est.classes_, self.n_classes)

    def _save_state(self, directory: Path) -> list[Path]:
        import skops.io as sio  # here, not at import: skops scans scikit-learn's estimators (3.8 s of every load)

        target = directory / MODEL_FILE
        with atomic_path(target) as tmp:
            sio.dump(self.estimator_, tmp)
        return [target]

    def _load_state(self, directory: Path, cfg: dict) -> None:
        import skops.io as sio

        path = directory / MODEL_FILE
        untrusted = set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES)
        if untrusted:
            raise ValueError(f"{path} contains types outside the trusted list: {sorted(untrusted)}")
        self.estimator_ = sio.load(path, trusted=TRUSTED_TYPES)


class RandomForestModel(_SklearnModel):
    name = "random_forest"
    defaults = {
        "class_weighting": True,
        "oversampling": "none",
        "seed": 0,
        "n_estimators": 200,
        "max_depth": 8,
        "min_samples_leaf": 5,
        "max_features": "sqrt",
        "n_jobs": 2,
    }

    def _estimator(self):
        from sklearn.ensemble import RandomForestClassifier

        p = self.params
        return RandomForestClassifier(
            n_estimators=p["n_estimators"],
            max_depth=p["max_depth"],
            min_samples_leaf=p["min_samples_leaf"],
            max_features=p["max_features"],
            class_weight="balanced" if p["class_weighting"] else None,
            n_jobs=p["n_jobs"],
            random_state=p["seed"],
        )


class GradientBoostingModel(_SklearnModel):
    """scikit-learn's ``HistGradientBoostingClassifier`` on the same window summaries as the forest. No early stopping
    of its own (``early_stopping=False``): its boosting rounds, depth and leaf size are a capacity choice made on the
    training span's embargoed tail (``CAPACITY_GRID`` in :mod:`regime_platform.modeling.inner_validation`), like the
    forest's, so the estimator never carves a random validation split out of time-ordered samples.

    Speed (measured on 3,000 windows × 30 summary columns, 2 cores): with class weights every bin edge is a weighted
    percentile, 2.3 s of a 255-bin fit; 63 bins (≈ 48 windows a bin, more than a leaf's minimum) take 0.4–0.7 s a fit.
    OpenMP on both cores was slower (0.8–20 s) whenever another process held a core, so fit and predict use
    ``n_threads`` (1) OpenMP threads; one thread also sums histograms in one fixed order."""

    name = "gradient_boosting"
    defaults = {
        "class_weighting": True,
        "oversampling": "none",
        "seed": 0,
        "max_iter": 200,
        "learning_rate": 0.05,
        "max_depth": 3,
        "min_samples_leaf": 20,
        "l2_regularization": 1.0,
        "max_bins": 63,
        "n_threads": 1,
    }

    def _fit(self, X, y, X_val, y_val, log, sample_weight=None) -> None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.params["n_threads"], user_api="openmp"):
            super()._fit(X, y, X_val, y_val, log, sample_weight)

    def _predict_proba(self, X, known_regime) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.params["n_threads"], user_api="openmp"):
            return super()._predict_proba(X, known_regime)

    def _estimator(self):
        from sklearn.ensemble import HistGradientBoostingClassifier

        p = self.params
        return HistGradientBoostingClassifier(
            max_iter=p["max_iter"],
            learning_rate=p["learning_rate"],
            max_depth=p["max_depth"],
            min_samples_leaf=p["min_samples_leaf"],
            l2_regularization=p["l2_regularization"],
            max_bins=p["max_bins"],
            early_stopping=False,
            class_weight="balanced" if p["class_weighting"] else None,
            random_state=p["seed"],
        )


class LogisticModel(_SklearnModel):
    name = "logistic"
    defaults = {"class_weighting": True, "oversampling": "none", "seed": 0, "C": 1.0, "max_iter": 2000}

    def _estimator(self):
        from sklearn.linear_model import LogisticRegression

        p = self.params
        return LogisticRegression(
            C=p["C"],
            max_iter=p["max_iter"],
            class_weight="balanced" if p["class_weighting"] else None,
            random_state=p["seed"],
        )
