"""Feature scaling fit on a fold's training sessions only.

The scaler is fit on the session rows covered by the training windows (``t - w + 1 … t`` for each
training sample ``t``, so every fit row is ≤ the last training ``t``), rows with a missing feature skipped,
then applied to every session (training, validation and test windows alike). It records its fit range so
``no_leakage`` can check ``scaler_fit_end ≤ train_end``. Saved as JSON (mean, std, fit range) beside each
model's artifacts.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from regime_platform.storage.files import read_json, write_json_atomic


@dataclass
class SessionScaler:
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)
    fit_start_idx: int | None = None
    fit_end_idx: int | None = None
    fit_start: dt.date | None = None
    fit_end: dt.date | None = None
    n_rows: int = 0

    def fit(
        self,
        X: np.ndarray,
        train_t: np.ndarray,
        window: int,
        *,
        dates: list[dt.date] | None = None,
        feature_names: list[str] | None = None,
    ) -> "SessionScaler":
        """Fit on the rows of X (n_sessions, n_features) inside the training windows of ``train_t``."""
        X = np.asarray(X, dtype=np.float64)
        train_t = np.asarray(train_t, dtype=np.int64)
        if train_t.size == 0:
            raise ValueError("cannot fit a scaler without training samples")
        # union of windows [t-w+1, t] via a difference array
        diff = np.zeros(X.shape[0] + 1, dtype=np.int64)
        np.add.at(diff, np.maximum(train_t - window + 1, 0), 1)
        np.add.at(diff, train_t + 1, -1)
        rows = np.cumsum(diff[:-1]) > 0
        rows &= np.isfinite(X).all(axis=1)
        if not rows.any():
            raise ValueError("no complete feature rows inside the training windows")
        idx = np.flatnonzero(rows)
        data = X[rows]
        self.mean = data.mean(axis=0)
        std = data.std(axis=0)
        self.std = np.where(std > 1e-12, std, 1.0)
        self.fit_start_idx, self.fit_end_idx = int(idx[0]), int(idx[-1])
        self.n_rows = int(rows.sum())
        if dates is not None:
            self.fit_start, self.fit_end = dates[self.fit_start_idx], dates[self.fit_end_idx]
        self.feature_names = list(feature_names) if feature_names is not None else []
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        if self.mean is None or self.std is None:
            raise RuntimeError("scaler is not fitted")
        X = np.asarray(X, dtype=np.float64)
        return ((X - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "kind": "standard",
            "feature_names": self.feature_names,
            "mean": None if self.mean is None else [float(v) for v in self.mean],
            "std": None if self.std is None else [float(v) for v in self.std],
            "fit_start_idx": self.fit_start_idx,
            "fit_end_idx": self.fit_end_idx,
            "fit_start": self.fit_start.isoformat() if self.fit_start else None,
            "fit_end": self.fit_end.isoformat() if self.fit_end else None,
            "n_rows": self.n_rows,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SessionScaler":
        return cls(
            mean=None if d.get("mean") is None else np.asarray(d["mean"], dtype=np.float64),
            std=None if d.get("std") is None else np.asarray(d["std"], dtype=np.float64),
            feature_names=list(d.get("feature_names") or []),
            fit_start_idx=d.get("fit_start_idx"),
            fit_end_idx=d.get("fit_end_idx"),
            fit_start=dt.date.fromisoformat(d["fit_start"]) if d.get("fit_start") else None,
            fit_end=dt.date.fromisoformat(d["fit_end"]) if d.get("fit_end") else None,
            n_rows=int(d.get("n_rows") or 0),
        )

    def save(self, path: Path) -> Path:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: Path) -> "SessionScaler":
        return cls.from_dict(read_json(path))
