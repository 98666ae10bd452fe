"""Production models: each model fit on all labelled history, versioned, saved and loaded with its scaler.

A generated labeler is fit on all labelled history (what production forecasts learn from); the training
set-up is the one the walk-forward folds use (:mod:`regime_platform.modeling.training`) and so is the step that chooses
capacity and dwell on the span's tail and fits (:func:`regime_platform.modeling.inner_validation.choose_and_fit`, the
same ``inner_score``, with the span's returns when it is the Sharpe), so a production model is fit exactly like a fold's
model, on every labelled sample. ``model_version`` = ``f"{name}-{fit_date}-{hash8}"``
over the model's parameters, the training settings (class weighting, oversampling, seed), the features, the
data range and the labeler's fit range and state mapping.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from regime_platform.modeling.feature_selection import select_span_features
from regime_platform.modeling.folds import MIN_LABELLED_SESSIONS
from regime_platform.modeling.inner_validation import choose_and_fit
from regime_platform.modeling.known_regime_inputs import production_refusal
from regime_platform.modeling.scaling import SessionScaler
from regime_platform.modeling.sequences import gather_windows, known_at
from regime_platform.modeling.targets import FoldTargets
from regime_platform.modeling.training import (
    Log,
    ModelsArg,
    Progress,
    TrainingConfig,
    normalize_models,
    prepare_samples,
    prepare_span,
)
from regime_platform.models import RegimeModel, load_model
from regime_platform.storage.files import (
    current_generation,
    publish_generation,
    read_json,
    to_jsonable,
    write_json_atomic,
)

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
    state_mapping: dict[str, int] | None = None
    seconds: float = 0.0
    min_dwell: int = 1  # the decision rule the ledger applies to this model's forecasts (1 = argmax)
    risk_off_regime: int | None = None  # with a risk-off threshold: the regime it guards (REGIME_RISK_OFF_THRESHOLD)
    risk_off_threshold: float | None = None  # the ledger votes risk-off when its probability reaches this (None: argmax)
    recency_half_life: float | None = None  # the half-life its training samples were weighted by (None: unweighted)
    # REGIME_PERSISTENCE_ANCHOR: the ledger's decision stays the known regime unless the vote is this probable
    persistence_anchor: float | None = None
    ticker: str | None = None  # whose history it was fit on, and the version of the targets it learned (DESIGN §2)
    targets_version: str | None = None
    # the walk-forward digest of the out-of-sample rows and fold records its asset stored in the same run
    # (modeling.fold_records): no_leakage compares it with the stored ones
    walk_forward_digest: str | None = None

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
                "state_mapping": self.state_mapping,
                "seconds": self.seconds,
                "min_dwell": self.min_dwell,
                "risk_off_regime": self.risk_off_regime,
                "risk_off_threshold": self.risk_off_threshold,
                "recency_half_life": self.recency_half_life,
                "persistence_anchor": self.persistence_anchor,
                "ticker": self.ticker,
                "targets_version": self.targets_version,
                "walk_forward_digest": self.walk_forward_digest,
                "fit_info": {k: v for k, v in self.model.fit_info.items() if k != "history"},
            }
        )

    def save(self, directory: str | Path, extra: Mapping[str, Any] | None = None) -> list[Path]:
        """The model, its scaler and this metadata (and the ``extra`` documents, e.g. the IO manager's marker) as one
        generation of ``directory``: a kill mid-save leaves the previous generation current and whole, never new weights
        beside an old scaler."""
        def write(into: Path) -> list[Path]:
            files = self.model.save(into)
            files.append(self.scaler.save(into / SCALER_FILE))
            files.append(write_json_atomic(into / PRODUCTION_FILE, self.metadata()))
            return files

        return publish_generation(directory, write, extra=extra)

    @classmethod
    def load(cls, directory: str | Path) -> "ProductionModel":
        directory = current_generation(directory)
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
            state_mapping=meta.get("state_mapping"),
            min_dwell=int(meta.get("min_dwell", 1)),
            risk_off_regime=meta.get("risk_off_regime"),
            risk_off_threshold=meta.get("risk_off_threshold"),
            persistence_anchor=meta.get("persistence_anchor"),
            recency_half_life=meta.get("recency_half_life"),
            seconds=meta.get("seconds", 0.0),
            ticker=meta.get("ticker"),
            targets_version=meta.get("targets_version"),
            walk_forward_digest=meta.get("walk_forward_digest"),
        )

    @staticmethod
    def saved_digest(directory: str | Path) -> tuple[bool, str | None]:
        """Whether ``directory`` holds a saved production model, and the walk-forward digest it records (None when it
        records none), without loading its weights."""
        path = current_generation(directory) / PRODUCTION_FILE
        if not path.exists():
            return False, None
        return True, read_json(path).get("walk_forward_digest")

    def version_refusal(self, ticker: str, targets_version: str) -> str | None:
        """One sentence when this model was not fit on ``ticker``'s targets of ``targets_version`` (the current
        settings'), saying what to re-materialize; None when it was."""
        if (self.ticker, self.targets_version) == (ticker, targets_version):
            return None
        return (f"the production {self.name} model was fit on {self.ticker or 'an unrecorded ticker'}'s targets "
                f"{self.targets_version or '(unversioned)'}, but the current settings give {ticker}'s targets "
                f"{targets_version}: re-materialize walk_forward_targets and {self.name}_model for {ticker}.")


def model_version(name: str, fit_date: dt.date, payload: Mapping[str, Any]) -> str:
    """``f"{name}-{fit_date}-{hash8}"``, hash8 = first 8 hex of sha256 over the canonical JSON payload
    (model params, training config, features, data range, labeler fit range, and the digest of the scaled inputs and
    targets it was fit on). The weights follow from these and the seed (bit for bit here: modeling/test_determinism.py),
    so one version is one set of weights on this machine."""
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
    returns: np.ndarray | None = None,
    fit_date: dt.date | None = None,
    include_baselines: bool = True,
    log: Log = None,
    progress: Progress = None,
) -> list[ProductionModel]:
    """Train each model on all labelled history for production, exactly as a fold's models are trained.

    A generated labeler is fit on all labelled history (``fold_labels(last labelled date)``); the scaler on
    all training windows; capacity and dwell chosen on the span's embargoed tail and every model fit on every
    labelled sample (:func:`regime_platform.modeling.inner_validation.choose_and_fit`, the fold's own step; sequence
    models choose their epochs on the last 15 %, then refit on all). ``returns`` (per session, aligned to ``dates``,
    as for :func:`regime_platform.modeling.walk_forward.walk_forward`): needed when ``config.inner_score`` is
    ``"sharpe"``. ``fit_date`` defaults to today.
    """
    if why := production_refusal(config):
        raise ValueError(why)
    w, h = config.window, config.horizon
    samples = prepare_samples(dates, X, feature_names, targets, config)
    dates, sample_t = samples.dates, samples.sample_t
    n_labelled = int(sample_t[-1] + h - samples.first_session + 1) if sample_t.size else 0
    if n_labelled < MIN_LABELLED_SESSIONS:
        raise ValueError(
            f"only {n_labelled} labelled sessions with complete features; at least {MIN_LABELLED_SESSIONS} are needed"
        )
    labelled = set(targets.labelled_dates())
    last_labelled = max(d for d in dates if d in labelled)
    labels = targets.fold_labels(last_labelled, None).align(dates)
    span = prepare_span(samples, sample_t, labels, config, "production fit")
    samples, span, selection = select_span_features(samples, span, labels, config, "production fit")
    if selection and log:
        log(f"production fit: features chosen on the training span's tail: {', '.join(selection['selected'])}"
            + (f" ({selection['note']})" if selection.get("note") else ""))
    for msg in sum(span.class_messages(), []):
        if log:
            log(msg)
    train_t = span.train_t
    fit_date = fit_date or dt.date.today()
    inputs_digest = hashlib.sha256(np.ascontiguousarray(span.Xs[: train_t[-1] + 1]).tobytes()
                                   + np.ascontiguousarray(span.y_train).tobytes()).hexdigest()
    specs = normalize_models(models, include_baselines)
    out: list[ProductionModel] = []
    for i, (name, params) in enumerate(specs, start=1):
        t0 = time.perf_counter()
        # the step each fold takes: capacity and dwell chosen on the span's own embargoed tail (by inner_score), then fit
        fitted = choose_and_fit(name, params, span, labels, config, returns=returns, where="production fit", log=log)
        model, inner, dwell = fitted.model, fitted.inner, fitted.min_dwell
        seconds = time.perf_counter() - t0
        if log:
            log(f"production fit {name}: {fitted.summary()}, in {seconds:.1f} s")
        payload = {
            "model": name,
            "params": model.params,
            "config": {k: v for k, v in config.to_dict().items() if k != "max_folds"},
            "training_settings": config.reproducibility(),
            "features": samples.feature_names,
            "feature_selection": selection,
            "train_start": dates[train_t[0]],
            "train_end": dates[train_t[-1]],
            "train_target_end": dates[train_t[-1] + h],
            "n_train": int(train_t.size),
            "labeler": labels.labeler,
            "labeler_fit_start": labels.fit_start,
            "labeler_fit_end": labels.fit_end,
            "state_mapping": {str(k): v for k, v in labels.state_mapping.items()},
            # what it learnt from: a revised price or label inside the span is another model, not the same version
            "inputs_sha256": inputs_digest,
        }
        if config.recency_half_life is not None:  # what its samples weighed (off: the payload, and version, as before)
            payload["recency_half_life"] = fitted.recency_half_life
        if config.persistence_anchor is not None:  # the rule the ledger acts by (off: the payload as before)
            payload["persistence_anchor"] = fitted.persistence_anchor
        out.append(
            ProductionModel(
                name=name,
                model=model,
                scaler=span.scaler,
                feature_names=samples.feature_names,
                window=w,
                horizon=h,
                n_classes=labels.n_classes,
                model_version=model_version(name, fit_date, payload),
                fit_date=fit_date,
                train_start=dates[train_t[0]],
                train_end=dates[train_t[-1]],
                train_target_end=dates[train_t[-1] + h],
                labeler=labels.labeler,
                labeler_fit_start=labels.fit_start,
                labeler_fit_end=labels.fit_end,
                class_counts=span.balance.counts,
                config={**config.to_dict(), "model_params": model.params, "inner_validation": inner,
                        "feature_selection": selection, "calibration": model.fit_info.get("calibration"),
                        **({"anchor_choice": fitted.anchor_choice} if fitted.anchor_choice else {})},
                state_mapping={str(k): v for k, v in labels.state_mapping.items()},
                seconds=seconds,
                min_dwell=int(dwell),
                risk_off_regime=fitted.risk_off_regime,
                risk_off_threshold=fitted.risk_off_threshold,
                recency_half_life=fitted.recency_half_life,
                persistence_anchor=fitted.persistence_anchor,
            )
        )
        if progress:
            progress(i, len(specs), f"production {name}")
    return out
