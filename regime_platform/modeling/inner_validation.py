"""Choices made inside each fold's training span: model capacity, the decision rule's minimum dwell, the risk-off
threshold and the recency half-life of the training weights.

The inner validation is time-ordered and embargoed like the folds themselves: it is the training span's
early-stopping tail (:func:`regime_platform.modeling.folds.validation_tail`: the last ``validation_fraction`` of the
training samples, with ``window + horizon`` sessions between the last fit sample and the first tail
sample). Every candidate is fit on the samples before the tail, asked for the tail, and scored by macro-F1
of its decisions against the tail's targets; the best candidate (ties: the first in grid order — the
simplest capacity, the shortest dwell) is then refit on the whole training span by the caller. Nothing
after the fold's last training target (t + h) is ever read, so the out-of-sample years cannot shape a choice.

The LSTM and CNN candidates early-stop on the same tail they are scored on (their epochs are a choice too), which
flatters every candidate alike; the chosen one then chooses its epochs again and is refit on the whole span.

With ``REGIME_RECENCY_HALF_LIFE=tail`` the half-life is one more dimension of the same grid (``RECENCY_GRID`` of
:mod:`regime_platform.modeling.training`, unweighted first): each candidate is fit on the samples before the tail
weighted relative to the last of them, so the tail and what follows it weigh nothing; a tie keeps the unweighted fit.

Grids are small on purpose (three capacities, four dwells): a tail of one or two years cannot tell more
candidates apart, and a large grid would fit the tail's noise. Pure numpy/scikit-learn, no Dagster.

:func:`choose_and_fit` is the one step every training span goes through — each walk-forward fold and the production
fit alike: choose what ``TrainingConfig`` leaves to the tail (scored by ``inner_score``: macro-F1, or the tail's
Sharpe from the span's returns and risk-off regime, :func:`tail_economics`), then fit the choice on the whole span.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from regime_platform.calendar import SQRT_SESSIONS_PER_YEAR
from regime_platform.modeling.decision import DWELL_GRID, THRESHOLD_GRID, apply_min_dwell
from regime_platform.modeling.persistence_anchor import choose_anchor, tail_probabilities
from regime_platform.modeling.sequences import known_at
from regime_platform.modeling.targets import FoldLabels
from regime_platform.modeling.training import (
    RECENCY_GRID,
    Log,
    TrainingConfig,
    TrainingSpan,
    fit_before_tail,
    fit_model,
    model_params,
    prefixed,
)
from regime_platform.modeling.walk_forward_targets import regime_mean_returns, risk_off_regime
from regime_platform.models import MODELS, RegimeModel
from regime_platform.models.base import quiet

# simplest first: a tie goes to the stronger regularization
CAPACITY_GRID: dict[str, list[dict[str, Any]]] = {
    "logistic": [{"C": 0.01}, {"C": 0.1}, {"C": 1.0}],
    "random_forest": [{"max_depth": 3, "min_samples_leaf": 50}, {"max_depth": 5, "min_samples_leaf": 20},
                      {"max_depth": 8, "min_samples_leaf": 5}],
    # boosting rounds grow with depth: few shallow trees on large leaves, up to many deeper trees on small ones
    "gradient_boosting": [{"max_depth": 2, "max_iter": 100, "min_samples_leaf": 50},
                          {"max_depth": 3, "max_iter": 200, "min_samples_leaf": 20},
                          {"max_depth": 5, "max_iter": 300, "min_samples_leaf": 10}],
    # the sequence models: width, dropout and weight decay move together from small and heavily regularized to
    # wide and lightly regularized; each candidate also early-stops on the tail, so its epochs are chosen too
    "lstm": [{"hidden": 16, "dropout": 0.4, "weight_decay": 1e-3}, {"hidden": 48, "dropout": 0.2, "weight_decay": 1e-4},
             {"hidden": 96, "dropout": 0.1, "weight_decay": 1e-5}],
    "cnn": [{"channels": 16, "dropout": 0.4, "weight_decay": 1e-3}, {"channels": 32, "dropout": 0.2,
                                                                      "weight_decay": 1e-4},
            {"channels": 64, "dropout": 0.1, "weight_decay": 1e-5}],
}


@dataclass
class InnerChoice:
    """What the inner validation chose for one model in one fold, and the evidence."""

    params: dict[str, Any]  # capacity params chosen (empty: none tuned)
    min_dwell: int
    score: float | None  # the chosen candidate's tail score (None: no tail, defaults kept)
    n_fit: int
    n_validation: int
    candidates: list[dict[str, Any]] = field(default_factory=list)  # every (params, min_dwell, macro_f1)
    note: str = ""
    scored_by: str = "macro_f1"
    threshold: ThresholdChoice | None = None  # REGIME_RISK_OFF_THRESHOLD=tail: the risk-off threshold and its evidence
    half_life: float | None = None  # the recency half-life the candidates (and the chosen fit) weigh by; None: unweighted
    half_life_from: str = ""  # "tail" (chosen here), "fixed" (the setting's), "" (recency weighting off: not recorded)

    def record(self) -> dict[str, Any]:
        return {"params": self.params, "min_dwell": self.min_dwell, "score": self.score, "scored_by": self.scored_by, "n_fit": self.n_fit,
                "n_validation": self.n_validation, "candidates": self.candidates, "note": self.note,
                **({"risk_off_threshold": self.threshold.record()} if self.threshold else {}),
                **({"recency_half_life": self.half_life, "recency_half_life_from": self.half_life_from}
                   if self.half_life_from else {})}


@dataclass
class ThresholdChoice:
    """The risk-off threshold chosen on the tail by the tail's own backtest (Sharpe of acting on it, 10 bp a switch),
    with the chosen dwell; None = the argmax rule (also what a tie keeps)."""

    threshold: float | None
    sharpe: float | None
    candidates: list[dict[str, Any]] = field(default_factory=list)  # every (threshold, tail sharpe)
    note: str = ""

    def record(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "tail_sharpe": self.sharpe, "candidates": self.candidates,
                "note": self.note}


def choose_threshold(proba: np.ndarray, min_dwell: int, economics: tuple[int, np.ndarray] | None,
                     grid: Sequence[float | None] = THRESHOLD_GRID) -> ThresholdChoice:
    """The threshold of ``grid`` whose decisions on the tail (``proba``: a probe fit before the tail, asked for it)
    earn the best tail Sharpe; ``economics = (risk_off_regime, held_returns)`` from :func:`tail_economics`."""
    if economics is None:
        return ThresholdChoice(None, None, note="no risk-off regime or tail returns in the training span: argmax kept")
    off, held = economics
    best, candidates = None, []
    for theta in grid:
        score = tail_sharpe(apply_min_dwell(proba, min_dwell, risk_off=off, risk_off_threshold=theta), off, held)
        candidates.append({"threshold": theta, "tail_sharpe": round(score, 6)})
        if best is None or score > best[0]:
            best = (score, theta)
    return ThresholdChoice(best[1], float(best[0]), candidates)


def tail_score(y_true: np.ndarray, decided: np.ndarray) -> float:
    """Macro-F1 over the regimes present in the tail's targets or decisions."""
    return float(f1_score(y_true, decided, average="macro", zero_division=0))


def tail_sharpe(decided: np.ndarray, risk_off: int, held_returns: np.ndarray, cost_bp: float = 10.0) -> float:
    """Sharpe (×√252) of being flat on the tail when the decision is ``risk_off``, long otherwise, earning
    ``held_returns`` (the simple return of session t+2 for a decision after the close of t: the backtest convention), with
    ``cost_bp`` per switch. 0 when the returns do not vary."""
    pos = (np.asarray(decided) != risk_off).astype(float)
    net = pos * held_returns - np.abs(np.diff(np.concatenate([[pos[0]], pos]))) * cost_bp / 10_000.0
    std = float(np.std(net, ddof=1)) if net.size > 1 else 0.0
    return float(np.mean(net) / std * SQRT_SESSIONS_PER_YEAR) if std > 0 else 0.0


def choose(
    name: str,
    model_params: Mapping[str, Any],
    span,
    *,
    tune_capacity: bool,
    dwell_grid: Sequence[int] | None,
    fixed_dwell: int = 1,
    economic: tuple[int, np.ndarray] | None = None,
    threshold_economics: tuple[int, np.ndarray] | None | bool = False,
    half_life_grid: Sequence[float | None] | None = None,
    fixed_half_life: float | None = None,
) -> InnerChoice:
    """Choose capacity (``tune_capacity`` and a grid for ``name``) and/or the dwell (``dwell_grid``) on the
    tail of ``span`` (a :class:`regime_platform.modeling.training.TrainingSpan`). ``model_params`` are the model's
    full params; grid values override them. Without a tail the defaults stay and the note says why.
    ``economic = (risk_off_regime, held_returns)`` (one return per tail sample, none past the training span)
    scores candidates by :func:`tail_sharpe` instead of macro-F1. ``threshold_economics`` (anything but False: the
    risk-off threshold is chosen, :func:`choose_threshold`, on the chosen candidate's tail probabilities; None when the
    span has no risk-off regime) — the threshold is always scored by the tail's Sharpe, whatever ``economic`` is.
    ``half_life_grid`` (REGIME_RECENCY_HALF_LIFE=tail): the recency half-life is chosen with capacity and dwell, every
    candidate weighted relative to the last sample before the tail (None in the grid = unweighted, also what the tail
    keeps when it cannot choose); otherwise every candidate weighs by ``fixed_half_life`` (None: unweighted)."""
    grid = CAPACITY_GRID.get(name) if tune_capacity else None
    dwells = list(dwell_grid) if dwell_grid else [fixed_dwell]
    thresholds = threshold_economics is not False
    lives = list(half_life_grid) if half_life_grid else [fixed_half_life]
    life_from = "tail" if half_life_grid else ("fixed" if fixed_half_life is not None else "")
    fallback_life = None if half_life_grid else fixed_half_life
    if not grid and len(dwells) == 1 and not thresholds and len(lives) == 1:
        return InnerChoice({}, dwells[0], None, 0, int(span.val_t.size), note="nothing to choose",
                           half_life=lives[0], half_life_from=life_from)
    fallback = 1 if dwell_grid else fixed_dwell  # default capacity and this dwell when the tail cannot choose
    if span.val_t.size == 0:
        return InnerChoice({}, fallback, None, 0, 0,
                           note="training span too short for an inner validation tail: default capacity and dwell"
                           + (", unweighted" if half_life_grid else ""),
                           half_life=fallback_life, half_life_from=life_from)
    y_fit, y_val = span.y_fit, span.y_val
    cannot_choose = None
    if np.unique(y_fit).size < 2:
        cannot_choose = "the samples before the tail hold one regime: default capacity and dwell"
    elif economic is None and np.unique(y_val).size < 2:
        # macro-F1 against a one-regime tail gives 1.0 to every candidate that never calls the other regime: it
        # cannot say whether a candidate recognises the regime it exists to catch, so the tail cannot choose
        # (the tail's Sharpe reads returns, not targets, and still ranks the candidates)
        cannot_choose = (f"the tail's targets hold one regime ({int(y_val[0])}), which cannot show whether a "
                         "candidate recognises the others: default capacity and dwell")
    W_val = span.windows(span.val_t)

    def tail_proba(params: Mapping[str, Any], half_life: float | None) -> tuple[np.ndarray, int]:
        model = fit_before_tail(name, params, span, half_life)  # also the chosen fit's probe: fit once
        # what the candidates were fit on, as their fits counted it
        return model.predict_proba(W_val, known_regime=np.full(len(W_val), -1)), int(model.fit_info["n_fit"])

    if cannot_choose:
        if half_life_grid:
            cannot_choose += ", unweighted"
        choice = InnerChoice({}, fallback, None, int(span.fit_t.size), int(span.val_t.size), note=cannot_choose,
                             half_life=fallback_life, half_life_from=life_from)
        if thresholds and np.unique(y_fit).size >= 2:  # the tail's returns still rank the thresholds
            choice.threshold = choose_threshold(tail_proba(model_params, fallback_life)[0], fallback,
                                                threshold_economics or None)
        elif thresholds:
            choice.threshold = ThresholdChoice(None, None, note=cannot_choose.replace("default capacity and dwell",
                                                                                      "argmax kept"))
        return choice
    candidates, best, n_fit, probas = [], None, 0, {}
    for life in lives:  # the unweighted fit first: a tie keeps it
        for i, cap in enumerate(grid or [{}]):
            proba, n_fit = tail_proba({**model_params, **cap}, life)
            probas[life, i] = proba
            for k in dwells:
                decided = apply_min_dwell(proba, k)
                score = tail_sharpe(decided, *economic) if economic else tail_score(y_val, decided)
                candidate = {"params": cap, "min_dwell": k, "score": round(score, 6)}
                candidates.append({"half_life": life, **candidate} if half_life_grid else candidate)
                if best is None or score > best[0]:
                    best = (score, cap, k, i, life)
    score, cap, k, i, life = best
    return InnerChoice(dict(cap), int(k), float(score), n_fit, int(span.val_t.size), candidates,
                       scored_by="sharpe" if economic else "macro_f1",
                       threshold=(choose_threshold(probas[life, i], int(k), threshold_economics or None)
                                  if thresholds else None),
                       half_life=life, half_life_from=life_from)


def span_risk_off(span: TrainingSpan, labels: FoldLabels, returns: np.ndarray, horizon: int) -> int | None:
    """The training span's risk-off regime: the lowest mean daily return over its own targets (t … t + h), as the
    evaluation's backtest decides it per fold."""
    t_last = int(span.train_t[-1])
    return risk_off_regime(regime_mean_returns(returns, labels.train_regime, int(span.train_t[0]), t_last + horizon,
                                               labels.n_classes))


def tail_economics(config: TrainingConfig, span: TrainingSpan, labels: FoldLabels, returns: np.ndarray | None,
                   where: str, *, needed: bool | None = None) -> tuple[int, np.ndarray] | None:
    """When the tail is scored by its backtest (``inner_score = "sharpe"``, or ``needed``: the risk-off threshold is
    chosen): the training span's risk-off regime and, per tail sample t, the simple return of session t+2 (the one its
    decision holds under the backtest convention) — tail samples whose t+2 lies past the last training target (t + h)
    are held flat, so nothing after the training span is read."""
    if not (config.inner_score == "sharpe" if needed is None else needed):
        return None
    if returns is None:
        raise ValueError(f"{where}: the inner validation scores the tail by its backtest and needs daily returns; pass "
                         "returns= (per session, aligned to the dates), or set REGIME_INNER_SCORE=macro_f1 and "
                         "REGIME_RISK_OFF_THRESHOLD=off.")
    t_last, h = int(span.train_t[-1]), config.horizon
    off = span_risk_off(span, labels, returns, h)
    if off is None or not span.val_t.size:
        return None
    at = span.val_t + 2
    r = np.zeros(at.size)
    ok = at <= t_last + h
    r[ok] = np.expm1(np.nan_to_num(np.asarray(returns, dtype=np.float64)[at[ok]]))
    return off, r


@dataclass
class SpanFit:
    """One model fit on one training span, with what its tail chose."""

    model: RegimeModel
    min_dwell: int  # the decision rule applied to its forecasts (1 = argmax)
    inner: dict[str, Any] | None  # InnerChoice.record(); None when nothing was left to choose
    risk_off_regime: int | None = None  # with a risk-off threshold: the regime it guards (the span's lowest return)
    risk_off_threshold: float | None = None  # None = argmax votes
    recency_half_life: float | None = None  # the half-life its training samples were weighted by (None: unweighted)
    persistence_anchor: float | None = None  # REGIME_PERSISTENCE_ANCHOR: depart from the known regime only this sure
    anchor_choice: dict[str, Any] | None = None  # AnchorChoice.record() when the tail chose it

    def decide(self, proba: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
        """The decisions this fit's rule makes from time-ordered probabilities (and, with an anchor, the regime known
        at each of those sessions)."""
        return apply_min_dwell(proba, self.min_dwell, risk_off=self.risk_off_regime,
                               risk_off_threshold=self.risk_off_threshold, known=known, anchor=self.persistence_anchor)

    def summary(self) -> str:
        """What this fit chose, in a few words: the one line a person waiting on a fold reads (the steps that chose
        it are at DEBUG)."""
        info = self.model.fit_info
        said = [f"fit on {info['n_fit']} samples"]
        if info.get("epochs"):
            said.append(f"{info['epochs']} epochs")
        if self.inner is not None:
            said.append(f"capacity {self.inner['params'] or 'default'}")
        said.append(f"dwell {self.min_dwell}")
        if self.risk_off_threshold is not None:
            said.append(f"risk-off at p ≥ {self.risk_off_threshold}")
        if self.recency_half_life is not None:
            said.append(f"half-life {self.recency_half_life:g}")
        if self.persistence_anchor is not None:
            said.append(f"anchored to the known regime below p {self.persistence_anchor:g}")
        temperature = (info.get("calibration") or {}).get("temperature")
        if temperature is not None:
            said.append(f"temperature {temperature:.2f}")
        return ", ".join(said)


def choose_and_fit(
    name: str,
    params: Mapping[str, Any],
    span: TrainingSpan,
    labels: FoldLabels,
    config: TrainingConfig,
    *,
    returns: np.ndarray | None = None,
    where: str,
    log: Log = None,
) -> SpanFit:
    """Choose capacity, dwell and risk-off threshold for ``name`` on the tail of ``span``, as ``config`` asks, and fit
    it on the whole span.

    A baseline keeps dwell 1 and the argmax and is simply fit. Otherwise, when the dwell is left to the tail
    (``min_dwell == 0``), capacity is tuned for a model with a grid, or the risk-off threshold is left to the tail
    (``risk_off_threshold == "tail"``), :func:`choose` picks them — capacity and dwell by the tail's Sharpe when
    ``config.inner_score == "sharpe"`` (``returns`` per session, aligned to the span's sessions; the span's labels give
    its risk-off regime), by macro-F1 otherwise; the threshold always by the tail's Sharpe — and the chosen params are
    fit on every training sample (:func:`regime_platform.modeling.training.fit_model`). A fixed threshold guards the
    span's risk-off regime. The recency half-life (``config.recency_half_life``): a fixed one weighs every fit of a
    non-baseline model; ``"tail"`` is chosen by :func:`choose` with capacity and dwell (candidates fit before the tail,
    weighted relative to its last sample) and the final fit on the whole span weighs relative to the span's last sample.
    Every walk-forward fold and the production fit call this, so a production model is chosen
    and fit exactly as a fold's is.
    """
    params = dict(params)
    log = quiet(log)  # how it chose goes at DEBUG: the caller says the fit's summary() in one line at INFO
    baseline = MODELS[name].is_baseline
    dwell, inner = (1 if baseline or config.min_dwell == 0 else config.min_dwell), None
    rule = None if baseline else config.risk_off_threshold
    off, theta = None, (rule if isinstance(rule, float) else None)
    recency = None if baseline else config.recency_half_life
    life = None if recency == "tail" else recency
    if rule is not None:
        if returns is None:
            raise ValueError(f"{where}: REGIME_RISK_OFF_THRESHOLD={rule} needs the span's daily returns to know its "
                             "risk-off regime; pass returns= (per session, aligned to the dates).")
        off = span_risk_off(span, labels, returns, config.horizon)
    on_tail = not baseline and (config.min_dwell == 0 or (config.tune_capacity and name in CAPACITY_GRID)
                                or rule == "tail" or recency == "tail")
    anchor = None if baseline else config.persistence_anchor
    sharpe = config.inner_score == "sharpe"
    # the tail's backtest, read once when capacity, dwell or the anchor are scored by it or the threshold is chosen by it
    held = (tail_economics(config, span, labels, returns, where,
                           needed=(on_tail and (sharpe or rule == "tail")) or (anchor == "tail" and sharpe))
            if on_tail or anchor == "tail" else None)
    if on_tail:
        choice = choose(name, model_params(name, params, config), span, tune_capacity=config.tune_capacity,
                        dwell_grid=DWELL_GRID if config.min_dwell == 0 else None, fixed_dwell=dwell,
                        economic=held if sharpe else None,
                        threshold_economics=held if rule == "tail" else False,
                        half_life_grid=RECENCY_GRID if recency == "tail" else None, fixed_half_life=life)
        params, dwell, inner = {**params, **choice.params}, choice.min_dwell, choice.record()
        if choice.threshold is not None:
            theta = choice.threshold.threshold
        if recency == "tail":
            life = choice.half_life
        if log:
            log(f"{where} {name}: inner validation chose {choice.params or 'the default capacity'}, "
                f"min_dwell {choice.min_dwell} ("
                + (f"tail {choice.scored_by} {choice.score}" if choice.score is not None else choice.note) + ")"
                + (f", risk-off threshold {theta if theta is not None else 'none (argmax)'}" if rule == "tail" else "")
                + (f", recency half-life {life if life is not None else 'none (unweighted)'}"
                   if recency == "tail" else ""))
    fit_config = config if config.recency_half_life == life else replace(config, recency_half_life=life)
    model = fit_model(name, params, span, fit_config, log=prefixed(log, f"{where} {name}"))
    fitted = SpanFit(model, int(dwell), inner, off if theta is not None else None, theta, life)
    if anchor == "tail":
        economic = held if sharpe else None
        chosen = choose_anchor(
            tail_probabilities(name, model_params(name, params, config), span, life, model),
            known_at(span.val_t, labels.known_regime), span.y_val, min_dwell=fitted.min_dwell,
            score=(lambda d: tail_sharpe(d, *economic)) if economic else (lambda d: tail_score(span.y_val, d)),
            scored_by="sharpe" if economic else "macro_f1", risk_off=fitted.risk_off_regime,
            risk_off_threshold=fitted.risk_off_threshold)
        fitted.persistence_anchor, fitted.anchor_choice = chosen.anchor, chosen.record()
        if log:
            log(f"{where} {name}: persistence anchor "
                + (f"{chosen.anchor} (tail {chosen.scored_by} {chosen.score})" if chosen.anchor is not None
                   else f"none ({chosen.note or f'tail {chosen.scored_by} {chosen.score}'})"))
    elif anchor is not None:
        fitted.persistence_anchor = float(anchor)
    return fitted
