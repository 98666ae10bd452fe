"""The decision rule: from each session's regime probabilities to the regime acted on (hysteresis).

A forecast that flips on one noisy session costs a switch in and a switch out (10 bp each in the backtest) and
tells a user nothing. :func:`apply_min_dwell` turns a time-ordered sequence of probability rows into
decisions that change only when the new regime has been the argmax for ``min_dwell`` consecutive sessions,
or — when ``threshold`` is given — as soon as its probability reaches ``threshold``. The first decision is
the first argmax. ``min_dwell = 1`` (and no threshold) is the plain argmax.

The economic decision threshold (``REGIME_RISK_OFF_THRESHOLD``): with ``risk_off`` and ``risk_off_threshold`` given,
each session's vote is the risk-off regime as soon as its probability reaches the threshold, otherwise the most
probable of the other regimes (:func:`votes`); the dwell rule then runs over the votes instead of the argmax. A
threshold below 1/2 goes flat on weaker evidence of a fall than the argmax needs: what a person who fears a crash more
than a missed rally does. The threshold is chosen per fold on the training span's tail by the tail's own backtest
(:mod:`regime_platform.modeling.inner_validation`), never by the test years.

The persistence anchor (``REGIME_PERSISTENCE_ANCHOR``): with ``known`` (the regime known after the close of each
session, -1 = unknown) and ``anchor`` given, each session's vote stays the known regime unless the vote above is
another regime whose probability reaches ``anchor`` — "the regime stays as it is" (the persistence baseline) unless
the model is sure enough of a change. It is chosen per fold on the training span's tail like the threshold.

Causal by construction: the decision at row i reads rows 0 … i only, so a later probability can never change
an earlier decision. Probabilities are never altered; only ``predicted_regime`` is. Pure numpy, no Dagster.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DWELL_GRID = (1, 3, 5, 10)  # the minimum dwells the inner validation chooses from (REGIME_MIN_DWELL=0)
# the risk-off thresholds the tail's backtest chooses from (REGIME_RISK_OFF_THRESHOLD=tail); None = the argmax, first
# so that a tie keeps the plain rule
THRESHOLD_GRID = (None, 0.2, 0.3, 0.4, 0.5)
# the persistence anchors the tail chooses from (REGIME_PERSISTENCE_ANCHOR=tail); None = no anchor, first so that a
# tie keeps the model's own votes; the higher the anchor, the closer the decisions stay to persistence
ANCHOR_GRID = (None, 0.6, 0.7, 0.8, 0.9, 0.95)


def votes(proba: np.ndarray, risk_off: int | None = None, risk_off_threshold: float | None = None, *,
          known: np.ndarray | None = None, anchor: float | None = None) -> np.ndarray:
    """Each session's vote (n,): the argmax, or with ``risk_off_threshold`` the ``risk_off`` regime whenever its
    probability reaches the threshold and the most probable other regime otherwise; with ``anchor`` and ``known``
    (one known regime per session, -1 = unknown) the known regime unless that vote is another regime whose
    probability reaches ``anchor``."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise ValueError(f"probabilities must be (n_sessions, n_regimes), got shape {proba.shape}")
    if not proba.size:
        return np.empty(0, dtype=np.int64)
    if risk_off_threshold is None or risk_off is None:
        voted = proba.argmax(axis=1).astype(np.int64)
    else:
        if not 0 <= int(risk_off) < proba.shape[1]:
            raise ValueError(f"risk-off regime {risk_off} is not one of the {proba.shape[1]} regimes")
        others = proba.copy()
        others[:, int(risk_off)] = -np.inf
        voted = np.where(proba[:, int(risk_off)] >= float(risk_off_threshold), int(risk_off),
                         others.argmax(axis=1)).astype(np.int64)
    return voted if anchor is None else anchored(voted, proba, known, float(anchor))


def anchored(voted: np.ndarray, proba: np.ndarray, known: np.ndarray | None, anchor: float) -> np.ndarray:
    """``voted`` anchored to ``known``: a session whose regime is known keeps it unless its vote is another regime
    with probability at least ``anchor``; a session with no known regime (-1) keeps its vote."""
    if known is None:
        raise ValueError("a persistence anchor needs the regime known at each session (known=…); pass the known "
                         "regimes or set REGIME_PERSISTENCE_ANCHOR=off.")
    known = np.asarray(known, dtype=np.int64)
    if known.shape != voted.shape:
        raise ValueError(f"known regimes have shape {known.shape}, expected {voted.shape}")
    if known.max(initial=-1) >= proba.shape[1]:
        raise ValueError(f"a known regime {int(known.max())} is not one of the {proba.shape[1]} regimes")
    sure = proba[np.arange(voted.size), voted] >= anchor
    return np.where((known < 0) | sure, voted, known).astype(np.int64)


def apply_min_dwell(proba: np.ndarray, min_dwell: int = 1, threshold: float | None = None, *,
                    risk_off: int | None = None, risk_off_threshold: float | None = None,
                    known: np.ndarray | None = None, anchor: float | None = None) -> np.ndarray:
    """Decisions (n,) from time-ordered probabilities (n, K) (and, with a persistence anchor, the known regimes);
    see the module docstring."""
    proba = np.asarray(proba, dtype=np.float64)
    if int(min_dwell) < 1:
        raise ValueError(f"min_dwell={min_dwell} must be at least 1 session (1 = act on the argmax every day).")
    argmax = votes(proba, risk_off, risk_off_threshold, known=known, anchor=anchor)
    if min_dwell == 1 and threshold is None:
        return argmax.astype(np.int64)
    out = np.empty(len(argmax), dtype=np.int64)
    state, candidate, streak = -1, -1, 0
    for i, a in enumerate(argmax):
        if state < 0:
            state = int(a)
        elif a == state:
            candidate, streak = -1, 0
        else:
            streak = streak + 1 if a == candidate else 1
            candidate = int(a)
            if streak >= min_dwell or (threshold is not None and proba[i, a] >= threshold):
                state, candidate, streak = int(a), -1, 0
        out[i] = state
    return out


def next_decision(previous: int | None, recent_argmax: Sequence[int], min_dwell: int) -> int:
    """One more step of :func:`apply_min_dwell` (no threshold) from what is stored: the last decision made and the
    argmax (the :func:`votes`, with a risk-off threshold) of the last ``min_dwell`` forecasts, today's last. The decision flips to a new regime when it has been the
    argmax for all of them, otherwise it stays. Equal to :func:`apply_min_dwell` run over the whole history (a
    streak of ``min_dwell`` argmaxes other than the standing decision is exactly when that rule flips); what the
    daily ledger uses, so it needs no replay of old probabilities."""
    recent = [int(a) for a in recent_argmax]
    if not recent:
        raise ValueError("next_decision needs at least today's argmax")
    if previous is None or min_dwell <= 1:
        return recent[-1]
    last = recent[-min_dwell:]
    if len(last) == min_dwell and len(set(last)) == 1 and last[0] != previous:
        return last[0]
    return int(previous)


def count_flips(decisions: np.ndarray) -> int:
    """How many times a decision sequence changes regime."""
    d = np.asarray(decisions)
    return int((d[1:] != d[:-1]).sum()) if d.size > 1 else 0
