"""Fitting models on one training span — the set-up the walk-forward folds and the production fit share.

Inputs (aligned to ``dates``, the sorted list of sessions): ``X`` (n_sessions, n_features) float with NaN
for missing (warm-up rows) and a :class:`~regime_platform.modeling.targets.FoldLabels` for the span.

:func:`prepare_span` turns candidate training samples into what a fit needs: the targets (regime at t+h),
the class balance of exactly those samples (:mod:`regime_platform.labels.class_balance`), the scaler fit on the
training windows' sessions only, and an early-stopping tail carved from the end of the span with the same
embargo as the folds.

:func:`fit_model` fits one model on the WHOLE training span. A model with early stopping (the LSTM and the
CNN) first chooses its number of epochs on the tail: it trains on the samples before the tail, picks the
epoch with the lowest tail loss, and is then refit from scratch, with the same seed, on every training
sample for exactly that many epochs. A refit rather than continued training: continuing would show the
early samples to the network about twice as often as the tail, the most recent and most relevant part; a
refit gives a model that differs from the probe only in having seen more (and more recent) data. Models
without early stopping fit on every training sample the embargo allows (:func:`final_fit_samples`).
Recency weighting (``TrainingConfig.recency_half_life``, REGIME_RECENCY_HALF_LIFE): with a half-life of H sessions
the sample at session index t of a fit whose last sample is t_last weighs 0.5 ** ((t_last − t) / H), normalised to mean
1 (:func:`recency_weights`), and goes to the model's ``fit`` as ``sample_weight``. Every fit is weighted relative to its
OWN last sample: the final fit on the whole span relative to the span's last training sample; the epoch-selection and
calibration probes, fit on the samples before the tail, relative to the last of those, so nothing of the tail or after
it moves a weight. Baselines are never weighted. Random oversampling carries the weights (a duplicated row is
the same session and keeps its weight); SMOTE is refused with weights (``TrainingConfig`` refuses it in
:func:`regime_platform.models.base.weights_refusal`'s sentence): a synthetic row between two sessions has no weight of
its own. Off (None), no ``sample_weight`` is passed at all, so fits are exactly those made before the setting.
``fit_info["n_fit"]`` says how many samples the returned model was fit on, as the fit itself counted them (the rows
scikit-learn's ``fit`` received, the samples the torch loop iterated in its last epoch: see
:class:`regime_platform.models.RegimeModel`), never copied from the span, so a fit on fewer rows shows.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from regime_platform.labels.class_balance import ClassBalance, class_balance
from regime_platform.modeling.folds import validation_tail
from regime_platform.modeling.scaling import SessionScaler
from regime_platform.modeling.sequences import complete_rows, gather_windows, sample_indices, targets_at
from regime_platform.modeling.targets import FoldLabels, FoldTargets
from regime_platform.models import BASELINES, MODELS, RegimeModel, accepted_params, make_model
from regime_platform.models.base import LeveledLog, weights_refusal
from regime_platform.models.calibration import Calibration, fit_temperature
from regime_platform.settings import Settings

Log = Callable[[str], None] | None
Progress = Callable[[int, int, str], None] | None

# the half-lives (sessions) REGIME_RECENCY_HALF_LIFE=tail chooses from on each span's tail; None = unweighted, first so
# that a tie keeps the unweighted fit
RECENCY_GRID: tuple[int | None, ...] = (None, 252, 756, 1260)


def recency_weights(t_idx: np.ndarray, half_life: float | None) -> np.ndarray | None:
    """The weight of each sample of one fit (``t_idx``: its session indices): 0.5 ** ((t_last − t) / half_life), with
    t_last the fit's last sample, normalised to mean 1; None (no weights) when ``half_life`` is None."""
    if half_life is None:
        return None
    t = np.asarray(t_idx, dtype=np.float64)
    if not t.size:
        return np.empty(0)
    w = 0.5 ** ((t.max() - t) / float(half_life))
    return w / w.mean()


# ---------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class TrainingConfig:
    window: int = 30
    horizon: int = 5
    epochs: int = 30  # the most epochs a sequence model may train; early stopping on the tail picks fewer
    patience: int = 5
    batch_size: int = 64
    class_weighting: bool = True
    oversampling: str = "none"  # none | random | smote (imbalanced-learn)
    max_folds: int | None = None  # keep the LAST n folds (reduced configs)
    seed: int = 0
    min_train_sessions: int = 1260
    validation_fraction: float = 0.15
    refit: str = "yearly"
    min_dwell: int = 1  # decision rule: sessions a new regime must lead before a forecast flips (1 = argmax,
    # 0 = chosen per fold by the inner validation on the training span's tail)
    tune_capacity: bool = False  # choose capacity (inner_validation.CAPACITY_GRID) per fold on the same tail
    inner_score: str = "macro_f1"  # what the inner validation maximizes on the tail: macro_f1 | sharpe
    calibration: str = "temperature"  # none | temperature: scale each model's probabilities on the training tail
    feature_selection: bool = False  # choose the inputs per fold on the training span (feature_selection.py)
    # the economic decision threshold (decision.votes): None = argmax, "tail" = chosen per fold by the tail's Sharpe,
    # a probability = always that one; it guards the span's risk-off regime
    risk_off_threshold: float | str | None = None
    # the persistence anchor (decision.anchored): None = off, "tail" = chosen per fold by the inner score, a probability
    persistence_anchor: float | str | None = None
    # recency weighting of training samples: None = off (unweighted), a half-life in sessions, or "tail" = chosen per
    # fold from RECENCY_GRID on the training span's tail (see the module docstring)
    recency_half_life: float | str | None = None
    # the known regime as an input: off | on (generated labelers) | always; a walk-forward measurement only
    known_regime_input: str = "off"

    def __post_init__(self) -> None:
        hl = self.recency_half_life
        number = isinstance(hl, int | float) and not isinstance(hl, bool) and math.isfinite(hl) and hl > 0
        if hl is not None and hl != "tail" and not number:
            raise ValueError(f"REGIME_RECENCY_HALF_LIFE={hl!r} is neither `off`, `tail` nor a positive number of "
                             "sessions; use e.g. `tail` or 756.")
        if hl is not None and (why := weights_refusal(self.oversampling, hl)):
            raise ValueError(why)
        if self.known_regime_input not in ("off", "on", "always"):
            raise ValueError(f"known_regime_input={self.known_regime_input!r} is unknown; use off, on or always.")

    @classmethod
    def from_settings(cls, settings: Settings) -> TrainingConfig:
        """The walk-forward and production training configuration ``settings`` ask for."""
        return cls(window=settings.window, horizon=settings.horizon, epochs=settings.epochs,
                   max_folds=settings.max_folds, class_weighting=settings.class_weighting,
                   oversampling=settings.oversampling, seed=settings.seed, min_dwell=settings.min_dwell,
                   tune_capacity=settings.inner_validation, inner_score=settings.inner_score,
                   calibration=settings.calibration, feature_selection=settings.feature_selection,
                   risk_off_threshold=settings.risk_off_threshold_value(),
                   persistence_anchor=settings.persistence_anchor_value(),
                   recency_half_life=settings.recency_half_life_value())

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

    def reproducibility(self) -> dict[str, Any]:
        """What a person needs to reproduce a fit, recorded in every fold record and production payload."""
        return {"class_weighting": self.class_weighting, "oversampling": self.oversampling, "seed": self.seed}

    def to_dict(self) -> dict[str, Any]:
        """The fields (what a model version hashes). Recency weighting, the persistence anchor and the known-regime input
        off are left out, so a configuration without them gives the dict, and the model versions, it gave before those
        settings existed."""
        d = asdict(self)
        for later, off in (("recency_half_life", None), ("persistence_anchor", None), ("known_regime_input", "off")):
            if d[later] == off:
                del d[later]
        return d

    def fixed_half_life(self) -> float | None:
        """The half-life a fit weights by (None: unweighted); "tail" must have been resolved by the inner validation."""
        if self.recency_half_life == "tail":
            raise ValueError("REGIME_RECENCY_HALF_LIFE=tail is chosen on each span's tail by inner_validation."
                             "choose_and_fit; fit through it, or give fit_model a configuration with the chosen "
                             "half-life.")
        return self.recency_half_life


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


def model_params(name: str, params: Mapping[str, Any], config: TrainingConfig) -> dict[str, Any]:
    return {**accepted_params(name, config.shared_model_params()), **params}


# ---------------------------------------------------------------------------------------------- samples
@dataclass
class Samples:
    """The session list, features and which sessions can be samples (window complete, target labelled)."""

    dates: list[dt.date]
    X: np.ndarray
    feature_names: list[str]
    sample_t: np.ndarray
    first_session: int  # first session with both a label and complete features

    def subset(self, names: Sequence[str]) -> "Samples":
        """The same sessions and samples with only the columns ``names`` (sample_t is kept, so folds stay equal)."""
        idx = [self.feature_names.index(n) for n in names]
        return Samples(self.dates, self.X[:, idx], list(names), self.sample_t, self.first_session)


def prepare_samples(
    dates: Sequence[dt.date], X: np.ndarray, feature_names: Sequence[str], targets: FoldTargets, config: TrainingConfig
) -> Samples:
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
    both = np.flatnonzero(complete_rows(X) & has_target)
    if both.size == 0:
        raise ValueError("no session has both a label and complete features")
    sample_t = sample_indices(X, config.window, config.horizon, has_target=has_target)
    return Samples(dates, X, list(feature_names), sample_t, int(both[0]))


# ---------------------------------------------------------------------------------------------- one span
class SingleClassSpan(ValueError):
    """The samples a model would fit on hold one regime only: no classifier can learn from them."""


@dataclass
class TrainingSpan:
    """One training span, ready to fit: targets, class balance of the fitted samples, scaler, tail."""

    where: str
    window: int
    horizon: int
    n_classes: int
    train_t: np.ndarray  # every training sample the embargo allows (what models are finally fit on)
    y_train: np.ndarray
    fit_t: np.ndarray  # the part before the early-stopping tail (epoch selection only)
    y_fit: np.ndarray
    val_t: np.ndarray  # the early-stopping tail (may be empty: then fixed epochs)
    y_val: np.ndarray
    balance: ClassBalance  # of y_train, exactly the samples the returned models fit on
    scaler: SessionScaler
    Xs: np.ndarray  # every session, scaled with the span's scaler
    dates: list[dt.date]  # every session (what the indices above point into)
    shared_params: dict[str, Any] = field(default_factory=dict)  # TrainingConfig.shared_model_params(): members' params
    # the fits on the samples before the tail, by (model, params, half-life): see fit_before_tail
    tail_fits: dict[tuple, RegimeModel] = field(default_factory=dict, repr=False, compare=False)

    def windows(self, t_idx: np.ndarray) -> np.ndarray:
        return gather_windows(self.Xs, t_idx, self.window)

    def rows_read(self, t_idx: np.ndarray) -> dict[str, Any]:
        """What a record says about the samples a step read: the first and last sample's session and how many."""
        if not t_idx.size:
            return {"rows_start": None, "rows_end": None, "n_rows": 0}
        return {"rows_start": self.dates[int(t_idx[0])], "rows_end": self.dates[int(t_idx[-1])],
                "n_rows": int(t_idx.size)}

    def class_messages(self) -> tuple[list[str], list[str]]:
        warnings, missing = self.balance.problems(self.where, "training samples")
        if self.val_t.size:
            tail_missing = [c for c in self.balance.present if c not in set(self.y_fit.tolist())]
            if tail_missing:
                warnings.append(f"{self.where}: regime(s) {tail_missing} occur only in the early-stopping tail, so "
                                "the sequence models choose their epochs without having trained on them")
        return warnings, [f"{m}: models cannot learn it in this fold and give it little or no probability"
                          for m in missing]


def prepare_span(
    samples: Samples, candidate_t: np.ndarray, labels: FoldLabels, config: TrainingConfig, where: str
) -> TrainingSpan:
    """Targets, class balance, scaler and early-stopping tail for the training samples ``candidate_t``.

    Raises :class:`SingleClassSpan` when the samples hold one regime, ``ValueError`` when none has a target.
    """
    w, h, K = config.window, config.horizon, labels.n_classes
    y_all = targets_at(candidate_t, h, labels.train_regime)
    train_t, y_train = candidate_t[y_all >= 0], y_all[y_all >= 0]
    if train_t.size == 0:
        raise ValueError(f"{where}: the labeler left no training targets")
    balance = class_balance(y_train, K)
    if len(balance.present) < 2:
        raise SingleClassSpan(
            f"{where}: every training target is regime {balance.present[0]}, and no classifier can learn from one "
            "class; start earlier (REGIME_START) so training spans a change of regime, or choose another labeler "
            "(REGIME_LABELER) or labels file.")
    scaler = SessionScaler().fit(samples.X, train_t, w, dates=samples.dates, feature_names=samples.feature_names)
    fit_t, val_t = validation_tail(train_t, config.validation_fraction, window=w, horizon=h)
    return TrainingSpan(
        where=where, window=w, horizon=h, n_classes=K,
        train_t=train_t, y_train=y_train,
        fit_t=fit_t, y_fit=targets_at(fit_t, h, labels.train_regime),
        val_t=val_t, y_val=targets_at(val_t, h, labels.train_regime),
        balance=balance, scaler=scaler, Xs=scaler.transform(samples.X), dates=samples.dates,
        shared_params=config.shared_model_params(),
    )


def final_fit_samples(span: TrainingSpan) -> tuple[np.ndarray, np.ndarray]:
    """The samples (and targets) a returned model is fit on: every training sample the embargo allows, the
    early-stopping tail included (the tail only chooses epochs, capacity, dwell and temperature)."""
    return span.train_t, span.y_train


def fit_before_tail(name: str, mparams: Mapping[str, Any], span: TrainingSpan, half_life: float | None,
                    log: Log = None) -> RegimeModel:
    """``name`` with ``mparams`` fit on the samples before the span's tail (early-stopping on the tail when it does),
    weighted by ``half_life`` relative to the last of them: the probe every choice on the tail reads — a capacity
    candidate, the epoch selection, the temperature. Every fit is seeded, so the same model, params and weights on the
    same samples give the same model: it is fit once per span and reused (the chosen capacity candidate is the
    chosen fit's epoch-selection or calibration probe; an ensemble's tail candidate is its members' probes). An
    ensemble is its members' own probes, each with the span's shared params, as :func:`fit_model` fits its members.
    The returned model is shared: read it, never change it."""
    life = None if half_life is None else float(half_life)
    model = make_model(name, **mparams)
    key = (name, repr(sorted(model.params.items())), life)  # the params with the model's defaults filled in
    if key in span.tail_fits:
        return span.tail_fits[key]
    if MODELS[name].composite:
        members = [fit_before_tail(m, accepted_params(m, span.shared_params), span, life,
                                   log=prefixed(log, f"member {m}")) for m in model.member_names()]
        model.assemble(members, span.n_classes)
    else:
        extra = ({"X_val": span.windows(span.val_t), "y_val": span.y_val}
                 if MODELS[name].early_stopping and span.val_t.size else {})
        model.fit(span.windows(span.fit_t), span.y_fit, n_classes=span.n_classes,
                  sample_weight=recency_weights(span.fit_t, life), log=log, **extra)
    span.tail_fits[key] = model
    return model


def fit_model(
    name: str, params: Mapping[str, Any], span: TrainingSpan, config: TrainingConfig, log: Log = None
) -> RegimeModel:
    """Fit ``name`` on the whole training span (see the module docstring for the epoch choice and the recency
    weights), calibrated on the span's tail when ``config.calibration`` asks for it; an ensemble fits and calibrates
    each member this way."""
    mparams = model_params(name, params, config)
    if MODELS[name].composite:
        ensemble = make_model(name, **mparams)
        member_config = replace(config, calibration="temperature")
        members = [fit_model(m, {}, span, member_config, log=prefixed(log, f"member {m}"))
                   for m in ensemble.member_names()]
        return ensemble.assemble(members, span.n_classes)
    half_life = None if MODELS[name].is_baseline else config.fixed_half_life()
    final_t, y_final = final_fit_samples(span)
    W_train = span.windows(final_t)
    K = span.n_classes
    probe = None
    if MODELS[name].early_stopping and span.val_t.size:
        probe = fit_before_tail(name, mparams, span, half_life, log=prefixed(log, "epoch selection on the tail"))
        epochs = int(probe.fit_info["best_epoch"])
        if log:
            log(f"{epochs} epochs chosen on the {span.val_t.size}-sample tail; refitting on all "
                f"{final_t.size} training samples")
        model = make_model(name, **{**mparams, "epochs": epochs}).fit(
            W_train, y_final, n_classes=K, sample_weight=recency_weights(final_t, half_life),
            log=prefixed(log, "refit on the whole span"))
        model.fit_info.update(
            epochs_selected=epochs, n_epoch_selection_fit=int(probe.fit_info["n_fit"]),
            n_validation=int(span.val_t.size), best_val_loss=probe.fit_info.get("best_val_loss"))
    else:
        model = make_model(name, **mparams).fit(W_train, y_final, n_classes=K,
                                                sample_weight=recency_weights(final_t, half_life), log=log)
    if config.calibration == "temperature" and not MODELS[name].is_baseline:
        calibration = calibrate_on_tail(name, mparams, span, probe, half_life)
        model.temperature = calibration.temperature
        model.fit_info["calibration"] = calibration.record()
        if log:
            log(f"temperature {calibration.temperature} on the {span.val_t.size}-sample tail"
                + (f" ({calibration.note})" if calibration.note else ""))
    return model


def calibrate_on_tail(name: str, mparams: Mapping[str, Any], span: TrainingSpan,
                      probe: RegimeModel | None, half_life: float | None = None) -> Calibration:
    """The temperature of ``name`` fit on the tail's predictions of a probe trained on the samples before the tail
    (the epoch-selection probe when there is one; otherwise one more fit, weighted by ``half_life`` relative to the
    last sample before the tail). The result records the samples read."""
    rows, y_rows = span.val_t, span.y_val
    if not rows.size:
        return fit_temperature(np.empty((0, span.n_classes)), np.empty(0, dtype=np.int64))
    if probe is None:
        if np.unique(span.y_fit).size < 2:
            return Calibration(1.0, int(rows.size), None, None,
                               "the samples before the tail hold one regime: temperature left at 1")
        probe = fit_before_tail(name, mparams, span, half_life)
    W_rows = span.windows(rows)
    proba = probe.predict_proba(W_rows, known_regime=np.full(len(W_rows), -1))
    return replace(fit_temperature(proba, y_rows), **span.rows_read(rows))


def prefixed(log: Log, prefix: str) -> Log:
    if log is None:
        return None
    if isinstance(log, LeveledLog):
        return log.prefixed(prefix)
    return lambda msg: log(f"{prefix}: {msg}")
