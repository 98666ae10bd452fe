"""Walk-forward driver: labels refit per fold, scaler per fold, every model per fold, baselines included.

Inputs (all aligned to ``dates``, the sorted list of sessions):

* ``X`` (n_sessions, n_features) float with NaN for missing (warm-up rows), ``feature_names``;
* a :class:`FoldTargets` giving each fold its labels — :class:`GivenLabels` (a user's file: the same labels
  every fold, no fit range) or :class:`RefitLabels` (a generated labeler refit on each fold's training
  span: targets ``predict`` over the training span only, test targets ``predict`` over training + test
  span, ``known_regime`` = ``predict_online``);
* the models to run (names, or ``(name, params)`` pairs, or ``{name: params}``) and a
  :class:`TrainingConfig`.

Per fold: labels refit with fit range ≤ the last training target (t + h); the scaler fit on the training
windows' sessions (≤ the last training t); an early-stopping tail carved from the end of the training
span with the same embargo; every model fit and asked for the fold's test samples; a fold record written.

Output: :class:`WalkForwardResult` — ``oos_predictions`` (exactly the columns of
``market.oos_predictions``), ``fold_records`` (what ``no_leakage`` verifies, see
:func:`regime_platform.leakage.verify_fold_records`), ``timings``. :func:`fit_final` trains each model on all
labelled history for production and names it ``f"{name}-{fit_date}-{hash8}"``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl

from regime_platform.artifacts import read_json, to_jsonable, write_json_atomic
from regime_platform.models import BASELINES, MODELS, RegimeModel, accepted_params, load_model, make_model
from regime_platform.scaling import SessionScaler
from regime_platform.sequences import (
    MISSING,
    as_label_array,
    complete_rows,
    gather_windows,
    known_at,
    sample_indices,
    targets_at,
)
from regime_platform.walk_forward import (
    MIN_LABELLED_SESSIONS,
    Fold,
    embargo_gap,
    validation_tail,
    walk_forward_folds,
)

Log = Callable[[str], None] | None
Progress = Callable[[int, int, str], None] | None

MINORITY_WARN_SHARE = 0.05

OOS_SCHEMA: dict[str, pl.DataType] = {
    "model": pl.String,
    "fold": pl.Int32,
    "as_of": pl.Date,
    "target_date": pl.Date,
    "horizon": pl.Int32,
    "predicted_regime": pl.Int32,
    "probabilities": pl.List(pl.Float64),
    "true_regime": pl.Int32,
    "known_regime": pl.Int32,
}


# ---------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class TrainingConfig:
    window: int = 30
    horizon: int = 5
    epochs: int = 30
    patience: int = 5
    batch_size: int = 64
    class_weighting: bool = True
    oversampling: str = "none"  # none | random | smote
    max_folds: int | None = None  # keep the LAST n folds (reduced configs)
    seed: int = 0
    min_train_sessions: int = 1260
    validation_fraction: float = 0.15
    refit: str = "yearly"

    def shared_model_params(self) -> dict[str, Any]:
        """Settings passed to every model that accepts them (a model's own params override them)."""
        return {
            "class_weighting": self.class_weighting,
            "oversampling": self.oversampling,
            "seed": self.seed,
            "epochs": self.epochs,
            "patience": self.patience,
            "batch_size": self.batch_size,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ModelsArg = Sequence[str | tuple[str, Mapping[str, Any]]] | Mapping[str, Mapping[str, Any] | None]


def normalize_models(models: ModelsArg, include_baselines: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """``["lstm", ("cnn", {...})]`` or ``{"lstm": {...}}`` → ``[(name, params), ...]`` (+ baselines)."""
    if isinstance(models, Mapping):
        items = [(name, dict(params or {})) for name, params in models.items()]
    else:
        items = [(m, {}) if isinstance(m, str) else (m[0], dict(m[1] or {})) for m in models]
    names = [n for n, _ in items]
    for name in names:
        if name not in MODELS:
            raise ValueError(f"unknown model {name!r}; registered: {', '.join(MODELS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"a model is listed twice: {names}")
    if include_baselines:
        items += [(b, {}) for b in BASELINES if b not in names]
    return items


def _model_params(name: str, params: Mapping[str, Any], config: TrainingConfig) -> dict[str, Any]:
    return {**accepted_params(name, config.shared_model_params()), **params}


# ---------------------------------------------------------------------------------------------- labels
@dataclass
class FoldLabels:
    """Labels for one fold, aligned to ``dates``; int arrays with -1 = no label."""

    dates: list[dt.date]
    train_regime: np.ndarray  # hindsight `predict` over the training span only; -1 outside it
    test_regime: np.ndarray  # `predict` over training + later span
    known_regime: np.ndarray  # causal assignment at each date
    n_classes: int
    fit_start: dt.date | None  # None for a user's file
    fit_end: dt.date | None
    labeler: str = "user"
    regime_names: list[str] | None = None

    def __post_init__(self) -> None:
        self.dates = list(self.dates)
        n = len(self.dates)
        for attr in ("train_regime", "test_regime", "known_regime"):
            arr = as_label_array(getattr(self, attr))
            if arr.shape != (n,):
                raise ValueError(f"FoldLabels.{attr} has shape {arr.shape}, expected ({n},)")
            setattr(self, attr, arr)

    def align(self, dates: Sequence[dt.date]) -> "FoldLabels":
        """The same labels re-indexed onto ``dates`` (sessions without a label get -1)."""
        dates = list(dates)
        if dates == self.dates:
            return self
        pos = {d: i for i, d in enumerate(self.dates)}
        idx = np.array([pos.get(d, -1) for d in dates], dtype=np.int64)
        have = idx >= 0

        def take(arr: np.ndarray) -> np.ndarray:
            out = np.full(len(dates), MISSING, dtype=np.int64)
            out[have] = arr[idx[have]]
            return out

        return FoldLabels(
            dates, take(self.train_regime), take(self.test_regime), take(self.known_regime),
            self.n_classes, self.fit_start, self.fit_end, self.labeler, self.regime_names,
        )


@runtime_checkable
class FoldTargets(Protocol):
    """Gives each fold its labels. ``user_labels`` = True for a user's file (no labeler fit range)."""

    user_labels: bool

    def labelled_dates(self) -> list[dt.date]:
        """Sessions that can carry a label (decides which samples exist before any fold is cut)."""
        ...

    def fold_labels(self, train_target_end: dt.date, test_target_end: dt.date | None = None) -> FoldLabels:
        """Labels for a fold whose last training target is ``train_target_end``; test targets need only
        reach ``test_target_end`` (None = all data)."""
        ...


class GivenLabels:
    """A user's labels file: the same labels every fold; ``known_regime`` as stored (the label
    ``label_lag`` sessions earlier); fit range None."""

    user_labels = True

    def __init__(
        self,
        dates: Sequence[dt.date],
        regime: Sequence[int] | np.ndarray,
        known_regime: Sequence[int] | np.ndarray,
        *,
        n_classes: int | None = None,
        name: str = "user",
        regime_names: list[str] | None = None,
    ) -> None:
        self.dates = list(dates)
        self.regime = as_label_array(np.asarray(regime, dtype=float))
        self.known_regime = as_label_array(np.asarray(known_regime, dtype=float))
        if self.regime.shape != (len(self.dates),) or self.known_regime.shape != (len(self.dates),):
            raise ValueError("dates, regime and known_regime must have the same length")
        if (self.regime >= 0).sum() == 0:
            raise ValueError("no labels given")
        self.n_classes = int(n_classes if n_classes is not None else self.regime.max() + 1)
        self.name = name
        self.regime_names = regime_names

    @classmethod
    def with_lag(
        cls, dates: Sequence[dt.date], regime: Sequence[int] | np.ndarray, label_lag: int = 0, **kwargs: Any
    ) -> "GivenLabels":
        """A user's labels with ``known_regime[t] = regime[t - label_lag]`` (-1 for the first ``label_lag``)."""
        reg = as_label_array(np.asarray(regime, dtype=float))
        if label_lag < 0:
            raise ValueError("label_lag must be ≥ 0")
        known = np.full_like(reg, MISSING)
        known[label_lag:] = reg[: reg.size - label_lag]
        return cls(dates, reg, known, **kwargs)

    def labelled_dates(self) -> list[dt.date]:
        return [d for d, r in zip(self.dates, self.regime) if r >= 0]

    def fold_labels(self, train_target_end: dt.date, test_target_end: dt.date | None = None) -> FoldLabels:
        return FoldLabels(
            self.dates, self.regime, self.regime, self.known_regime, self.n_classes, None, None,
            self.name, self.regime_names,
        )


class RefitLabels:
    """A generated labeler refit inside each fold.

    ``frame``: polars DataFrame with a ``date`` column, sorted, holding whatever the labeler reads.
    ``make_labeler()``: a fresh labeler with ``fit(frame_span) -> self``, ``predict(frame) -> array``
    (hindsight), ``predict_online(frame) -> array`` (causal) and ``n_regimes`` (ids 0…K-1; -1/NaN = none).
    """

    user_labels = False

    def __init__(self, frame: pl.DataFrame, make_labeler: Callable[[], Any], *, name: str | None = None) -> None:
        if "date" not in frame.columns:
            raise ValueError("the labeler frame needs a `date` column")
        frame = frame.sort("date")
        if frame["date"].is_duplicated().any():
            raise ValueError("the labeler frame has duplicate dates")
        self.frame = frame
        self.make_labeler = make_labeler
        self.name = name
        self.dates = frame["date"].to_list()

    def labelled_dates(self) -> list[dt.date]:
        return list(self.dates)

    def fold_labels(self, train_target_end: dt.date, test_target_end: dt.date | None = None) -> FoldLabels:
        train_frame = self.frame.filter(pl.col("date") <= train_target_end)
        if train_frame.height == 0:
            raise ValueError(f"no labeler rows on or before {train_target_end}")
        span = self.frame if test_target_end is None else self.frame.filter(pl.col("date") <= test_target_end)
        labeler = self.make_labeler().fit(train_frame)
        n = len(self.dates)

        def padded(values: Any, length: int) -> np.ndarray:
            arr = as_label_array(np.asarray(values, dtype=float))
            if arr.shape != (length,):
                raise ValueError(f"the labeler returned {arr.shape[0]} labels for {length} rows")
            out = np.full(n, MISSING, dtype=np.int64)
            out[:length] = arr
            return out

        K = int(labeler.n_regimes)
        names = getattr(labeler, "regime_names", None)
        return FoldLabels(
            self.dates,
            padded(labeler.predict(train_frame), train_frame.height),
            padded(labeler.predict(span), span.height),
            padded(labeler.predict_online(span), span.height),
            K,
            train_frame["date"][0],
            train_frame["date"][-1],
            self.name or getattr(labeler, "name", type(labeler).__name__),
            list(names) if names is not None else None,
        )


# ---------------------------------------------------------------------------------------------- results
@dataclass
class WalkForwardResult:
    oos_predictions: pl.DataFrame
    fold_records: list[dict[str, Any]]
    timings: list[dict[str, Any]]  # one per (model, fold): seconds, epochs
    folds: list[Fold]
    config: TrainingConfig
    feature_names: list[str]
    single_split: bool
    warnings: list[str] = field(default_factory=list)

    def fold_records_json(self) -> list[dict[str, Any]]:
        return to_jsonable(self.fold_records)

    def write_fold_records(self, path: str | Path) -> Path:
        """``folds.json``: {config, features, single_split, folds: [records]} written atomically."""
        return write_json_atomic(
            path,
            {
                "config": self.config.to_dict(),
                "features": self.feature_names,
                "single_split": self.single_split,
                "folds": self.fold_records_json(),
            },
        )

    def summary(self) -> str:
        lines = []
        if self.single_split:
            lines.append(self.folds[0].notes[0] if self.folds and self.folds[0].notes else "single chronological split")
        for f in self.folds:
            lines.append(f.describe())
        lines.extend(self.warnings)
        return "\n".join(lines)


def read_fold_records(path: str | Path) -> list[dict[str, Any]]:
    return read_json(path)["folds"]


# ---------------------------------------------------------------------------------------------- helpers
def _prepare(
    dates: Sequence[dt.date], X: np.ndarray, feature_names: Sequence[str], targets: FoldTargets, config: TrainingConfig
) -> tuple[list[dt.date], np.ndarray, np.ndarray, np.ndarray, int]:
    dates = list(dates)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] != len(dates):
        raise ValueError(f"X must be (n_sessions={len(dates)}, n_features), got {X.shape}")
    if len(feature_names) != X.shape[1]:
        raise ValueError(f"{len(feature_names)} feature names for {X.shape[1]} columns")
    if any(b <= a for a, b in zip(dates, dates[1:])):
        raise ValueError("dates must be strictly increasing")
    labelled = set(targets.labelled_dates())
    has_target = np.array([d in labelled for d in dates], dtype=bool)
    complete = complete_rows(X)
    both = np.flatnonzero(complete & has_target)
    if both.size == 0:
        raise ValueError("no session has both a label and complete features")
    sample_t = sample_indices(X, config.window, config.horizon, has_target=has_target)
    return dates, X, has_target, sample_t, int(both[0])


def _class_balance(y: np.ndarray, n_classes: int, where: str) -> tuple[dict[int, int], list[str], list[str]]:
    counts = np.bincount(y, minlength=n_classes)[:n_classes]
    total = int(counts.sum())
    warnings, errors = [], []
    for c, k in enumerate(counts):
        if k == 0:
            errors.append(f"{where}: regime {c} has no training rows")
        elif k / total < MINORITY_WARN_SHARE:
            warnings.append(f"{where}: regime {c} is {k / total:.1%} of training rows ({k} of {total}), under 5 %")
    if int((counts > 0).sum()) < 2:
        raise ValueError(f"{where}: every training target is regime {int(np.argmax(counts))}, and no classifier can "
                         "learn from one class; start earlier (REGIME_START) so training spans a change of regime, "
                         "or choose another labeler (REGIME_LABELER) or labels file.")
    return {int(c): int(k) for c, k in enumerate(counts)}, warnings, errors


def _prefixed(log: Log, prefix: str) -> Log:
    if log is None:
        return None
    return lambda msg: log(f"{prefix}: {msg}")


# ---------------------------------------------------------------------------------------------- driver
def walk_forward(
    dates: Sequence[dt.date],
    X: np.ndarray,
    feature_names: Sequence[str],
    targets: FoldTargets,
    models: ModelsArg,
    config: TrainingConfig = TrainingConfig(),
    *,
    include_baselines: bool = True,
    log: Log = None,
    progress: Progress = None,
) -> WalkForwardResult:
    """Run the walk-forward evaluation; see the module docstring.

    ``log(str)``: fold plans, class-balance warnings, one line per model per epoch.
    ``progress(done, total, what)``: after each (fold, model) fit.
    """
    w, h = config.window, config.horizon
    dates, X, _has_target, sample_t, s0 = _prepare(dates, X, feature_names, targets, config)
    feature_names = list(feature_names)
    specs = normalize_models(models, include_baselines)
    folds = walk_forward_folds(
        dates, sample_t, w, h, config.min_train_sessions, config.refit, config.max_folds, first_session=s0
    )
    single = bool(folds and folds[0].single_split)
    warnings: list[str] = []
    if single:
        warnings.append(folds[0].notes[0])
        if log:
            log(folds[0].notes[0])

    rows: dict[str, list] = {c: [] for c in OOS_SCHEMA}
    records: list[dict[str, Any]] = []
    timings: list[dict[str, Any]] = []
    total, done = len(folds) * len(specs), 0

    for fold in folds:
        where = f"fold {fold.fold}" + (f" ({fold.test_year})" if fold.test_year else "")
        labels = targets.fold_labels(fold.train_target_end, fold.test_target_end).align(dates)
        K = labels.n_classes

        y_all = targets_at(fold.train_t, h, labels.train_regime)
        train_t, y_train = fold.train_t[y_all >= 0], y_all[y_all >= 0]
        yt_all = targets_at(fold.test_t, h, labels.test_regime)
        test_t, y_test = fold.test_t[yt_all >= 0], yt_all[yt_all >= 0]
        if train_t.size == 0 or test_t.size == 0:
            msg = f"{where}: skipped, the fold's labeler left no {'training' if train_t.size == 0 else 'test'} targets"
            warnings.append(msg)
            if log:
                log(msg)
            continue
        if (y_train >= K).any() or (y_test >= K).any():
            raise ValueError(f"{where}: a label is ≥ n_classes={K}")

        counts, bal_warn, bal_err = _class_balance(y_train, K, where)
        for msg in bal_warn + bal_err:
            warnings.append(msg)
            if log:
                log(msg)

        scaler = SessionScaler().fit(X, train_t, w, dates=dates, feature_names=feature_names)
        Xs = scaler.transform(X)
        fit_t, val_t = validation_tail(train_t, config.validation_fraction, window=w, horizon=h)
        y_fit = targets_at(fit_t, h, labels.train_regime)
        y_val = targets_at(val_t, h, labels.train_regime)
        W_fit = gather_windows(Xs, fit_t, w)
        W_val = gather_windows(Xs, val_t, w) if val_t.size else None
        W_test = gather_windows(Xs, test_t, w)
        known_test = known_at(test_t, labels.known_regime)
        if log:
            log(
                f"{where}: train {dates[train_t[0]]}…{dates[train_t[-1]]} ({train_t.size} samples, "
                f"{val_t.size} in the validation tail), test {dates[test_t[0]]}…{dates[test_t[-1]]} "
                f"({test_t.size}), embargo {embargo_gap(int(train_t[-1]), int(test_t[0]), w, h)} sessions"
            )

        model_info: dict[str, dict[str, Any]] = {}
        for name, params in specs:
            model = make_model(name, **_model_params(name, params, config))
            t0 = time.perf_counter()
            model.fit(W_fit, y_fit, n_classes=K, X_val=W_val, y_val=y_val, log=_prefixed(log, f"{where} {name}"))
            proba = model.predict_proba(W_test, known_regime=known_test)
            seconds = time.perf_counter() - t0
            epochs = model.fit_info.get("epochs")
            model_info[name] = {"seconds": round(seconds, 3), "epochs": epochs}
            timings.append(
                {"model": name, "fold": fold.fold, "seconds": seconds, "epochs": epochs,
                 "n_fit": int(fit_t.size), "n_val": int(val_t.size), "n_test": int(test_t.size)}
            )
            n = test_t.size
            rows["model"] += [name] * n
            rows["fold"] += [fold.fold] * n
            rows["as_of"] += [dates[t] for t in test_t]
            rows["target_date"] += [dates[t + h] for t in test_t]
            rows["horizon"] += [h] * n
            rows["predicted_regime"] += proba.argmax(axis=1).tolist()
            rows["probabilities"] += proba.tolist()
            rows["true_regime"] += y_test.tolist()
            rows["known_regime"] += [None if k < 0 else int(k) for k in known_test]
            done += 1
            if progress:
                progress(done, total, f"{where} {name}")
            if log:
                log(f"{where} {name}: {seconds:.1f} s" + (f", {epochs} epochs" if epochs else ""))

        T, t_last = int(test_t[0]), int(train_t[-1])
        records.append(
            {
                "fold": fold.fold,
                "test_year": fold.test_year,
                "single_split": fold.single_split,
                "window": w,
                "horizon": h,
                "train_start": dates[train_t[0]],
                "train_end": dates[t_last],
                "train_target_end": dates[t_last + h],
                "test_start": dates[T],
                "test_end": dates[test_t[-1]],
                "test_target_end": dates[test_t[-1] + h],
                "first_test_t": T,
                "last_train_t": t_last,
                "embargo_sessions": embargo_gap(t_last, T, w, h),
                "embargo_required": w + h,
                "validation_start": dates[val_t[0]] if val_t.size else None,
                "validation_end": dates[val_t[-1]] if val_t.size else None,
                "fit_end": dates[fit_t[-1]],
                "n_train": int(train_t.size),
                "n_fit": int(fit_t.size),
                "n_validation": int(val_t.size),
                "n_test": int(test_t.size),
                "scaler_fit_start": scaler.fit_start,
                "scaler_fit_end": scaler.fit_end,
                "scaler": {"mean": scaler.to_dict()["mean"], "std": scaler.to_dict()["std"]},
                "labeler": labels.labeler,
                "labeler_fit_start": labels.fit_start,
                "labeler_fit_end": labels.fit_end,
                "user_labels": bool(targets.user_labels),
                "n_classes": K,
                "features": feature_names,
                "class_counts": counts,
                "class_warnings": bal_warn,
                "class_errors": bal_err,
                "models": model_info,
            }
        )

    frame = pl.DataFrame(rows, schema=OOS_SCHEMA)
    return WalkForwardResult(frame, records, timings, folds, config, feature_names, single, warnings)


# ---------------------------------------------------------------------------------------------- production
PRODUCTION_FILE = "production.json"
SCALER_FILE = "scaler.json"


@dataclass
class ProductionModel:
    """A model fit on all labelled history, with its scaler and provenance; what the ledger uses."""

    name: str
    model: RegimeModel
    scaler: SessionScaler
    feature_names: list[str]
    window: int
    horizon: int
    n_classes: int
    model_version: str
    fit_date: dt.date
    train_start: dt.date
    train_end: dt.date
    train_target_end: dt.date
    labeler: str | None
    labeler_fit_start: dt.date | None
    labeler_fit_end: dt.date | None
    class_counts: dict[int, int]
    config: dict[str, Any]
    seconds: float = 0.0

    def predict_at(
        self, X: np.ndarray, t_idx: Sequence[int] | np.ndarray, known_regime: np.ndarray | None = None
    ) -> np.ndarray:
        """Probabilities for the windows ending at sessions ``t_idx`` of raw (unscaled) features ``X``;
        ``known_regime`` is per-session (aligned to X) and only read by persistence."""
        t_idx = np.asarray(t_idx, dtype=np.int64)
        W = gather_windows(self.scaler.transform(X), t_idx, self.window)
        known = None if known_regime is None else known_at(t_idx, known_regime)
        if self.model.uses_known_regime and known is None:
            raise ValueError(f"{self.name} needs the known regime at each as_of")
        return self.model.predict_proba(W, known_regime=known)

    def forecast_last(self, X: np.ndarray, known_regime_at_t: int | None = None) -> np.ndarray:
        """Probabilities for t+h from the window ending at the LAST row of raw features ``X``."""
        X = np.asarray(X, dtype=np.float64)
        if not np.isfinite(X[-self.window :]).all():
            raise ValueError("the last window has missing features")
        known = None
        if known_regime_at_t is not None:
            known = np.full(X.shape[0], -1, dtype=np.int64)
            known[-1] = known_regime_at_t
        return self.predict_at(X, [X.shape[0] - 1], known)[0]

    def metadata(self) -> dict[str, Any]:
        return to_jsonable(
            {
                "name": self.name,
                "model_version": self.model_version,
                "fit_date": self.fit_date,
                "feature_names": self.feature_names,
                "window": self.window,
                "horizon": self.horizon,
                "n_classes": self.n_classes,
                "train_start": self.train_start,
                "train_end": self.train_end,
                "train_target_end": self.train_target_end,
                "labeler": self.labeler,
                "labeler_fit_start": self.labeler_fit_start,
                "labeler_fit_end": self.labeler_fit_end,
                "class_counts": self.class_counts,
                "config": self.config,
                "seconds": self.seconds,
                "fit_info": {k: v for k, v in self.model.fit_info.items() if k != "history"},
            }
        )

    def save(self, directory: str | Path) -> list[Path]:
        directory = Path(directory)
        files = self.model.save(directory)
        files.append(self.scaler.save(directory / SCALER_FILE))
        files.append(write_json_atomic(directory / PRODUCTION_FILE, self.metadata()))
        return files

    @classmethod
    def load(cls, directory: str | Path) -> "ProductionModel":
        directory = Path(directory)
        meta = read_json(directory / PRODUCTION_FILE)
        d = lambda s: dt.date.fromisoformat(s) if s else None  # noqa: E731
        return cls(
            name=meta["name"],
            model=load_model(directory),
            scaler=SessionScaler.load(directory / SCALER_FILE),
            feature_names=meta["feature_names"],
            window=meta["window"],
            horizon=meta["horizon"],
            n_classes=meta["n_classes"],
            model_version=meta["model_version"],
            fit_date=d(meta["fit_date"]),
            train_start=d(meta["train_start"]),
            train_end=d(meta["train_end"]),
            train_target_end=d(meta["train_target_end"]),
            labeler=meta.get("labeler"),
            labeler_fit_start=d(meta.get("labeler_fit_start")),
            labeler_fit_end=d(meta.get("labeler_fit_end")),
            class_counts={int(k): v for k, v in meta["class_counts"].items()},
            config=meta["config"],
            seconds=meta.get("seconds", 0.0),
        )


def model_version(name: str, fit_date: dt.date, payload: Mapping[str, Any]) -> str:
    """``f"{name}-{fit_date}-{hash8}"``, hash8 = first 8 hex of sha256 over the canonical JSON payload
    (model params, training config, features, data range, labeler fit range)."""
    blob = json.dumps(to_jsonable(payload), sort_keys=True, separators=(",", ":"))
    return f"{name}-{fit_date.isoformat()}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def fit_final(
    dates: Sequence[dt.date],
    X: np.ndarray,
    feature_names: Sequence[str],
    targets: FoldTargets,
    models: ModelsArg,
    config: TrainingConfig = TrainingConfig(),
    *,
    fit_date: dt.date | None = None,
    include_baselines: bool = True,
    log: Log = None,
    progress: Progress = None,
) -> list[ProductionModel]:
    """Train each model on all labelled history for production.

    A generated labeler is fit on all labelled history (``fold_labels(last labelled date)``); the
    scaler on all training windows; early stopping on the last 15 % (with the embargo gap), as in the
    folds. ``fit_date`` defaults to today.
    """
    w, h = config.window, config.horizon
    dates, X, has_target, sample_t, s0 = _prepare(dates, X, feature_names, targets, config)
    feature_names = list(feature_names)
    n_labelled = int(sample_t[-1] + h - s0 + 1) if sample_t.size else 0
    if n_labelled < MIN_LABELLED_SESSIONS:
        raise ValueError(
            f"only {n_labelled} labelled sessions with complete features; at least {MIN_LABELLED_SESSIONS} are needed"
        )
    last_labelled = dates[int(np.flatnonzero(has_target)[-1])]
    labels = targets.fold_labels(last_labelled, None).align(dates)
    K = labels.n_classes
    y_all = targets_at(sample_t, h, labels.train_regime)
    train_t, y_train = sample_t[y_all >= 0], y_all[y_all >= 0]
    counts, bal_warn, bal_err = _class_balance(y_train, K, "production fit")
    for msg in bal_warn + bal_err:
        if log:
            log(msg)
    scaler = SessionScaler().fit(X, train_t, w, dates=dates, feature_names=feature_names)
    Xs = scaler.transform(X)
    fit_t, val_t = validation_tail(train_t, config.validation_fraction, window=w, horizon=h)
    W_fit = gather_windows(Xs, fit_t, w)
    y_fit = targets_at(fit_t, h, labels.train_regime)
    W_val = gather_windows(Xs, val_t, w) if val_t.size else None
    y_val = targets_at(val_t, h, labels.train_regime)
    fit_date = fit_date or dt.date.today()
    specs = normalize_models(models, include_baselines)
    out: list[ProductionModel] = []
    for i, (name, params) in enumerate(specs, start=1):
        mparams = _model_params(name, params, config)
        model = make_model(name, **mparams)
        t0 = time.perf_counter()
        model.fit(W_fit, y_fit, n_classes=K, X_val=W_val, y_val=y_val, log=_prefixed(log, f"production {name}"))
        seconds = time.perf_counter() - t0
        payload = {
            "model": name,
            "params": model.params,
            "config": {k: v for k, v in config.to_dict().items() if k != "max_folds"},
            "features": feature_names,
            "train_start": dates[train_t[0]],
            "train_end": dates[train_t[-1]],
            "train_target_end": dates[train_t[-1] + h],
            "n_train": int(train_t.size),
            "labeler": labels.labeler,
            "labeler_fit_start": labels.fit_start,
            "labeler_fit_end": labels.fit_end,
        }
        out.append(
            ProductionModel(
                name=name,
                model=model,
                scaler=scaler,
                feature_names=feature_names,
                window=w,
                horizon=h,
                n_classes=K,
                model_version=model_version(name, fit_date, payload),
                fit_date=fit_date,
                train_start=dates[train_t[0]],
                train_end=dates[train_t[-1]],
                train_target_end=dates[train_t[-1] + h],
                labeler=labels.labeler,
                labeler_fit_start=labels.fit_start,
                labeler_fit_end=labels.fit_end,
                class_counts=counts,
                config={**config.to_dict(), "model_params": model.params},
                seconds=seconds,
            )
        )
        if progress:
            progress(i, len(specs), f"production {name}")
    return out
