"""Baselines every model must beat: ``majority`` and ``persistence``.

``majority``: predicts the most frequent training class; probabilities = the training class shares.

``persistence``: the regime at t+h equals the regime KNOWN after the close of t (``known_regime[t]``: the
labeler's causal/online assignment, or a user's label ``label_lag`` sessions earlier) — never the hindsight
label. It takes that as ``predict_proba(X, known_regime=array)`` (one value per sample, -1 = unknown);
the windows are ignored. Probabilities are one-hot on the known regime (a hard forecast: its log loss
and Brier are those of a forecaster that is always sure). Where the known regime is unknown (-1, e.g. an
online labeler's warm-up) it falls back to the training class shares.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from regime_platform.models.base import RegimeModel, class_counts


class _SharesModel(RegimeModel):
    is_baseline = True
    kind = "baseline"
    defaults = {"seed": 0}

    def _fit(self, X, y, X_val, y_val, log) -> None:
        counts = class_counts(y, self.n_classes)
        self.shares_ = counts / counts.sum()
        self.fit_info["class_shares"] = [float(v) for v in self.shares_]
        self.fit_info["n_fit_rows"] = int(counts.sum())  # the targets its shares were counted from

    def _load_state(self, directory: Path, cfg: dict) -> None:
        self.shares_ = np.asarray(cfg["fit_info"]["class_shares"], dtype=np.float64)


class MajorityModel(_SharesModel):
    name = "majority"

    def _predict_proba(self, X, known_regime) -> np.ndarray:
        return np.tile(self.shares_, (X.shape[0], 1))


class PersistenceModel(_SharesModel):
    name = "persistence"
    uses_known_regime = True

    def _predict_proba(self, X, known_regime) -> np.ndarray:
        if known_regime is None:
            raise ValueError("persistence needs known_regime (the regime known at each sample's t)")
        known = np.asarray(known_regime, dtype=np.int64)
        if known.shape != (X.shape[0],):
            raise ValueError(f"known_regime has shape {known.shape}, expected ({X.shape[0]},)")
        if (known >= self.n_classes).any():
            raise ValueError(f"known_regime has ids ≥ n_classes={self.n_classes}")
        proba = np.tile(self.shares_, (X.shape[0], 1))
        ok = known >= 0
        proba[ok] = 0.0
        proba[np.flatnonzero(ok), known[ok]] = 1.0
        return proba
