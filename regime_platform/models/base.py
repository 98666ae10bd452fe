"""The one model interface, plus the helpers every model shares (params, class weights, oversampling).

Inputs are windows ``X`` (n, window, n_features) float32, already scaled outside the model
(:mod:`regime_platform.modeling.scaling`), and integer targets ``y`` in ``0 … n_classes-1``. A class absent from the
training targets still gets a (zero) probability column, so every model returns (n, n_classes).

``known_regime``: the regime known after the close of each sample's ``t``. Every model's
``predict_proba`` accepts it as a keyword and ignores it, except the persistence baseline, which needs it
(``uses_known_regime = True``). The driver always passes it, so models are called uniformly.

``sample_weight`` (optional, one non-negative weight per training sample: the training code's recency weights):
the scikit-learn models pass it to the estimator's ``fit`` (multiplying the class weights), the sequence models scale
each sample's class-weighted cross-entropy by it, the ensemble hands it to its members. A baseline is never weighted.
With ``oversampling="random"`` the weights are carried through the resampling (a duplicated row is the same session
and keeps its weight: :func:`oversample`); with SMOTE they are refused (:func:`weights_refusal`, the one
sentence every layer refuses with), a synthetic row lying between two sessions has no weight of its own. Without it, ``_fit`` is called
exactly as before weights existed.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from regime_platform.models.calibration import apply_temperature
from regime_platform.storage.files import read_json, write_json_atomic

Log = Callable[[str], None] | None


class LeveledLog:
    """A log with two levels, so a person waiting sees the fold summaries and not every epoch: calling it says a
    line at INFO (``info``); ``debug`` takes the per-epoch lines (the Dagster assets pass ``context.log.debug``)."""

    def __init__(self, info: Callable[[str], None], debug: Callable[[str], None] | None = None) -> None:
        self.info, self._debug = info, debug

    def __call__(self, msg: str) -> None:
        self.info(msg)

    def debug(self, msg: str) -> None:
        if self._debug is not None:
            self._debug(msg)

    def prefixed(self, prefix: str) -> "LeveledLog":
        return LeveledLog(lambda m: self.info(f"{prefix}: {m}"),
                        (lambda m: self._debug(f"{prefix}: {m}")) if self._debug is not None else None)


def detail(log: Log) -> Log:
    """Where a per-epoch line goes: a :class:`LeveledLog`'s debug level, else the plain callable itself."""
    return log.debug if isinstance(log, LeveledLog) else log


def quiet(log: Log) -> Log:
    """``log`` with every line at its debug level: the steps inside one fit, which its one summary line stands for."""
    return LeveledLog(log.debug, log.debug) if isinstance(log, LeveledLog) else log


OVERSAMPLING = ("none", "random", "smote")  # REGIME_OVERSAMPLING's values (the settings validate against these)
CONFIG_FILE = "config.json"


def damaged(name: str, directory: Path, exc: Exception) -> ValueError:
    """One sentence for a model whose files cannot be loaded as saved."""
    why = (str(exc).splitlines() or [""])[0][:160]
    return ValueError(f"the {name} model in {directory} cannot be loaded, its files are damaged, tampered with or of "
                      f"another model ({type(exc).__name__}: {why}); re-materialize its asset to write it afresh.")


class RegimeModel:
    """Base class. Subclasses set ``name``, ``defaults`` and implement ``_fit`` / ``_predict_proba`` /
    ``_save_state`` / ``_load_state``."""

    name: ClassVar[str] = "base"
    defaults: ClassVar[dict[str, Any]] = {}
    uses_known_regime: ClassVar[bool] = False
    is_baseline: ClassVar[bool] = False
    kind: ClassVar[str] = ""  # what it is built on, shown as its asset's kind in the UI: pytorch, scikitlearn, baseline
    early_stopping: ClassVar[bool] = False  # chooses its epochs on a validation tail (the training code refits)
    composite: ClassVar[bool] = False  # built from other models, each fit by the training code (the ensemble)

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise TypeError(
                f"{self.name}: unknown parameter(s) {', '.join(unknown)}; accepted: {', '.join(sorted(self.defaults))}"
            )
        self.params: dict[str, Any] = {**self.defaults, **params}
        if "oversampling" in self.params and self.params["oversampling"] not in OVERSAMPLING:
            raise ValueError(f"oversampling={self.params['oversampling']!r}; use one of {OVERSAMPLING}")
        self.n_classes: int | None = None
        self.n_features: int | None = None
        self.window: int | None = None
        self.fit_info: dict[str, Any] = {}
        # temperature applied to the probabilities (regime_platform.models.calibration); 1 = as the model gives them
        self.temperature: float = 1.0

    # ---- public interface -------------------------------------------------------------------------
    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        n_classes: int,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        log: Log = None,
        sample_weight: np.ndarray | None = None,
    ) -> "RegimeModel":
        X = _check_X(X)
        y = np.asarray(y, dtype=np.int64)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y has shape {y.shape}, expected ({X.shape[0]},)")
        if y.size == 0:
            raise ValueError(f"{self.name}: no training samples")
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"{self.name}: targets must lie in 0…{n_classes - 1}")
        if X_val is not None and (y_val is None or len(X_val) == 0):
            X_val, y_val = None, None
        if X_val is not None:
            X_val = _check_X(X_val)
            y_val = np.asarray(y_val, dtype=np.int64)
        self.n_classes = int(n_classes)
        self.window, self.n_features = int(X.shape[1]), int(X.shape[2])
        self.fit_info = {"n_train": int(X.shape[0]), "n_val": 0 if X_val is None else int(X_val.shape[0])}
        if sample_weight is None:
            self._fit(X, y, X_val, y_val, log)
        else:
            sample_weight = self._check_sample_weight(sample_weight, y.size)
            self.fit_info["sample_weight"] = {"min": float(sample_weight.min()), "max": float(sample_weight.max())}
            self._fit(X, y, X_val, y_val, log, sample_weight=sample_weight)
        self.fit_info["n_fit"] = self._fitted_samples()
        return self

    def _check_sample_weight(self, sample_weight: np.ndarray, n: int) -> np.ndarray:
        w = np.asarray(sample_weight, dtype=np.float64)
        if self.is_baseline:
            raise ValueError(f"{self.name} is a baseline and is never weighted; fit it without sample_weight.")
        if why := weights_refusal(self.params.get("oversampling", "none")):
            raise ValueError(why)
        if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
            raise ValueError(f"{self.name}: sample_weight must be {n} finite non-negative weights, not all zero; got "
                             f"shape {w.shape}.")
        return w

    def _fitted_samples(self) -> int:
        """How many training samples the fit saw, read from the fit itself: ``n_fit_rows`` (the rows the estimator's
        own ``fit`` received, or the torch loop iterated in its last epoch, or a baseline counted) less
        ``n_oversampled`` (rows oversampling added). A model built from other models (the ensemble) sets ``n_fit``."""
        if "n_fit" in self.fit_info:
            return int(self.fit_info["n_fit"])
        if "n_fit_rows" not in self.fit_info:
            raise RuntimeError(f"{self.name}: its fit did not record n_fit_rows, the rows it was fit on; record them "
                               "in _fit where the estimator or training loop sees them.")
        return int(self.fit_info["n_fit_rows"]) - int(self.fit_info.get("n_oversampled", 0))

    def predict_proba(self, X: np.ndarray, *, known_regime: np.ndarray | None = None) -> np.ndarray:
        if self.n_classes is None:
            raise RuntimeError(f"{self.name} is not fitted")
        X = _check_X(X)
        if self.n_features is not None and X.shape[2] != self.n_features:
            raise ValueError(f"{self.name}: fitted on {self.n_features} features, got {X.shape[2]}")
        proba = np.asarray(self._predict_proba(X, known_regime), dtype=np.float64)
        return apply_temperature(proba, self.temperature)

    def predict(self, X: np.ndarray, *, known_regime: np.ndarray | None = None) -> np.ndarray:
        return self.predict_proba(X, known_regime=known_regime).argmax(axis=1)

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "params": self.params,
            "n_classes": self.n_classes,
            "n_features": self.n_features,
            "window": self.window,
            "fit_info": self.fit_info,
            "temperature": self.temperature,
        }

    def save(self, directory: Path) -> list[Path]:
        """Write the fitted model into ``directory`` (each file atomically); return the files written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = self._save_state(directory)
        # each state file's checksum, so that a truncated or tampered file is refused when loaded
        digests = {Path(f).relative_to(directory).as_posix(): hashlib.sha256(Path(f).read_bytes()).hexdigest()
                   for f in files}
        files.append(write_json_atomic(directory / CONFIG_FILE, self.config() | {"sha256": digests}))
        return files

    @classmethod
    def load(cls, directory: Path) -> "RegimeModel":
        """The model saved in ``directory``; a truncated, tampered or foreign file is refused in one sentence."""
        directory = Path(directory)
        try:
            cfg = read_json(directory / CONFIG_FILE)
            if cfg.get("name") != cls.name:
                raise ValueError(f"{directory} holds a {cfg.get('name')!r} model, not {cls.name!r}")
            for name, digest in (cfg.get("sha256") or {}).items():
                if hashlib.sha256((directory / name).read_bytes()).hexdigest() != digest:
                    raise ValueError(f"{name} does not match the checksum recorded when it was saved")
            model = cls(**cfg["params"])
            model.n_classes, model.n_features, model.window = cfg["n_classes"], cfg["n_features"], cfg["window"]
            model.fit_info = cfg.get("fit_info") or {}
            model.temperature = float(cfg.get("temperature", 1.0))
            model._load_state(directory, cfg)
        except Exception as exc:  # nothing in them is executed (JSON, weights_only torch, skops' trusted types)
            raise damaged(cls.name, directory, exc) from exc
        return model

    # ---- to implement -----------------------------------------------------------------------------
    def _fit(self, X, y, X_val, y_val, log: Log) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict_proba(self, X, known_regime) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _save_state(self, directory: Path) -> list[Path]:
        return []

    def _load_state(self, directory: Path, cfg: dict) -> None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({json.dumps(self.params, default=str)})"


def _check_X(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3:
        raise ValueError(f"X must be 3-D (n_samples, window, n_features), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN/inf: windows must have complete features")
    return X


def class_counts(y: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes)[:n_classes]


def balanced_class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """sklearn's "balanced" rule, n / (k_present · count_c); 0 for a class absent from ``y``."""
    counts = class_counts(y, n_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(n_classes, dtype=np.float64)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w


def weights_refusal(oversampling: str, half_life: object = None) -> str | None:
    """The one sentence refusing sample weights with ``oversampling``, or None when it carries them: ``smote`` cannot
    (a synthetic row lies between two sessions and has no weight of its own), ``none`` and ``random`` can. The settings,
    ``TrainingConfig`` and every weighted fit refuse with it; ``half_life``, when the caller knows it, is named in it."""
    if oversampling != "smote":
        return None
    setting = "REGIME_RECENCY_HALF_LIFE" if half_life is None else f"REGIME_RECENCY_HALF_LIFE={half_life}"
    return (f"{setting} needs REGIME_OVERSAMPLING=none or random (a SMOTE row lies between two sessions and has no "
            "weight of its own); set one of them otherwise.")


def oversample(
    X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None, method: str, seed: int, log: Log = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Oversample minority classes with imbalanced-learn; the one step every model's fit resamples its rows with.

    ``random``: duplicate sample indices (RandomOverSampler over the index column) — windows untouched, and each copy
    keeps its sample's weight of ``sample_weight`` (None = unweighted, returned as None).
    ``smote``: SMOTE on flattened windows (n, window·features), reshaped back; ``k_neighbors`` is reduced
    to the smallest class size − 1 and a class of one sample falls back to random oversampling; refused with weights
    (:func:`weights_refusal`). Works for 3-D windows and 2-D summaries alike.
    """
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if method == "none" or np.unique(y).size < 2:
        return X, y, w
    if w is not None and (why := weights_refusal(method)):
        raise ValueError(why)
    if method == "random":
        from imblearn.over_sampling import RandomOverSampler

        idx = np.arange(len(y)).reshape(-1, 1)
        res_idx, res_y = RandomOverSampler(random_state=seed).fit_resample(idx, y)
        res_idx = res_idx.ravel()
        return X[res_idx], np.asarray(res_y, dtype=np.int64), None if w is None else w[res_idx]
    if method == "smote":  # unweighted here: refused with weights above
        from imblearn.over_sampling import SMOTE

        min_count = int(np.bincount(y)[np.bincount(y) > 0].min())
        if min_count < 2:
            if log:
                log("SMOTE needs ≥ 2 samples per class; falling back to random oversampling")
            return oversample(X, y, None, "random", seed, log)
        shape = X.shape[1:]
        flat = X.reshape(len(X), -1)
        res_X, res_y = SMOTE(random_state=seed, k_neighbors=min(5, min_count - 1)).fit_resample(flat, y)
        return np.asarray(res_X, dtype=X.dtype).reshape((-1, *shape)), np.asarray(res_y, dtype=np.int64), None
    raise ValueError(f"oversampling={method!r}; use one of {OVERSAMPLING}")


def full_proba(proba: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Expand an estimator's (n, len(classes)) probabilities to (n, n_classes), zeros for unseen classes."""
    out = np.zeros((proba.shape[0], n_classes), dtype=np.float64)
    out[:, np.asarray(classes, dtype=np.int64)] = proba
    return out
