"""The persistence anchor chosen inside each fold's training span (``REGIME_PERSISTENCE_ANCHOR=tail``).

Persistence — "the regime stays as it is" — is the baseline the models find hardest to beat on macro-F1: the regime
known after the close of t is usually the regime at t + h. The anchor makes that the default decision and lets the
model depart from it only when it is sure of a change: each session's vote stays the known regime unless the model's
vote is another regime with probability at least the anchor (:func:`regime_platform.modeling.decision.anchored`).

The anchor is chosen, like the dwell and the risk-off threshold, on the training span's embargoed tail: the tail
probabilities come from the chosen candidate's fit on the samples before the tail (the probe every tail choice
reads), scaled by the temperature the final fit was calibrated with, so the anchor is compared with probabilities on
the scale the final model gives; the known regimes are the fold's causal assignment at each tail session, inside the
span. Each anchor of :data:`~regime_platform.modeling.decision.ANCHOR_GRID` (None = no anchor, first, so a tie keeps
the model's own votes) is scored by the inner validation's score — macro-F1 against the tail's targets, or the tail's
Sharpe — with the dwell and risk-off threshold already chosen. A tail with no known regime, or (scored by macro-F1)
whose targets hold one regime, cannot choose: no anchor, and the record says why. Pure numpy, no Dagster.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from regime_platform.modeling.decision import ANCHOR_GRID, apply_min_dwell
from regime_platform.modeling.training import TrainingSpan, fit_before_tail
from regime_platform.models import MODELS, RegimeModel, accepted_params
from regime_platform.models.calibration import apply_temperature


@dataclass
class AnchorChoice:
    """The persistence anchor chosen on the tail (None: no anchor), with every candidate's tail score."""

    anchor: float | None
    score: float | None
    scored_by: str = "macro_f1"
    candidates: list[dict[str, Any]] = field(default_factory=list)  # every (anchor, score)
    note: str = ""

    def record(self) -> dict[str, Any]:
        return {"anchor": self.anchor, "score": self.score, "scored_by": self.scored_by,
                "candidates": self.candidates, "note": self.note}


def tail_probabilities(name: str, mparams: dict[str, Any], span: TrainingSpan, half_life: float | None,
                       final: RegimeModel) -> np.ndarray:
    """The tail's probabilities (n_tail, K) on the scale ``final`` gives them: the fit before the tail with the chosen
    params (``mparams``, the model's full params) asked for the tail and scaled by ``final``'s temperature — for an
    ensemble, the mean of its members' probes, each scaled by its final member's temperature, as the ensemble averages
    its calibrated members; (0, K) when the span has no tail."""
    if not span.val_t.size:  # no tail: nothing to score (choose_anchor says so)
        return np.empty((0, span.n_classes))
    W_val = span.windows(span.val_t)
    unknown = np.full(len(W_val), -1)
    if MODELS[name].composite:
        members = final.members_
        return np.mean([apply_temperature(fit_before_tail(m.name, accepted_params(m.name, span.shared_params), span,
                                                          half_life).predict_proba(W_val, known_regime=unknown),
                                          m.temperature) for m in members], axis=0)
    probe = fit_before_tail(name, mparams, span, half_life)
    # the probe is uncalibrated (temperature 1); the final fit's temperature was fit on this same tail
    return apply_temperature(probe.predict_proba(W_val, known_regime=unknown), final.temperature)


def choose_anchor(proba: np.ndarray, known: np.ndarray, y_val: np.ndarray, *, min_dwell: int,
                  score: Callable[[np.ndarray], float], scored_by: str, risk_off: int | None = None,
                  risk_off_threshold: float | None = None,
                  grid: Sequence[float | None] = ANCHOR_GRID) -> AnchorChoice:
    """The anchor of ``grid`` whose decisions on the tail (``proba``, ``known``: one known regime per tail sample,
    -1 = unknown) score best by ``score`` (decisions → float; higher is better), with the chosen ``min_dwell`` and
    risk-off threshold applied."""
    known = np.asarray(known, dtype=np.int64)
    if not proba.shape[0]:
        return AnchorChoice(None, None, scored_by, note="no tail in the training span: no anchor")
    if (known < 0).all():
        return AnchorChoice(None, None, scored_by, note="no regime is known on the tail: no anchor")
    if scored_by == "macro_f1" and np.unique(y_val).size < 2:
        return AnchorChoice(None, None, scored_by,
                            note=f"the tail's targets hold one regime ({int(y_val[0])}), which cannot show whether an "
                                 "anchor lets the model call a change: no anchor")
    best, candidates = None, []
    for anchor in grid:
        decided = apply_min_dwell(proba, min_dwell, risk_off=risk_off, risk_off_threshold=risk_off_threshold,
                                  known=known, anchor=anchor)
        s = float(score(decided))
        candidates.append({"anchor": anchor, "score": round(s, 6)})
        if best is None or s > best[0]:
            best = (s, anchor)
    return AnchorChoice(best[1], best[0], scored_by, candidates)
