"""Walk-forward fold splitting: expanding window, yearly refits, embargo in session indices.

This module only cuts folds (which samples train, which test); the loop that trains on them is
:mod:`regime_platform.modeling.walk_forward`.

Everything here works on *session indices* into ``dates`` (the sorted list of sessions) and on the
candidate sample indices ``sample_t`` from :mod:`regime_platform.modeling.sequences`.

Embargo. A training sample ``t`` (window ``t-w+1 … t``, target at ``t+h``) may be used by a fold whose first
test sample is ``T`` only if ``(T - w + 1) - (t + h) >= w + h``: at least ``w + h`` sessions lie between the
last training target and the first session of the first test window. Hence the last usable training
sample is ``t = T - 2w - 2h + 1`` (w=30, h=5: ``T - 69``).

First test year. ``s0`` is the first session with both a label and complete features. The first test
year is the first 1 January with at least ``min_train_sessions`` (1,260 = 5 × 252) sessions from ``s0``
to it: the smallest year ``Y`` with ``index(first session of Y) - s0 >= 1260``. Each fold tests one
calendar year (by the ``as_of`` date ``t`` of its samples); the last fold may be a partial year.

Fallback. With less labelled history than ``min_train_sessions`` plus one test year (252 sessions), or no
sample in the first test year, a single chronological split is returned instead: the first 70 % of the
samples train, the rest test, same embargo, flagged ``single_split=True`` so the caller can say so.
Under 300 labelled sessions: ``ValueError``.

``max_folds`` keeps the LAST ``n`` folds (the most recent years; the fold numbers stay those of the full
schedule, so fold 9 is always the same test year whatever ``max_folds`` is). Reduced test configs train
on the most history that way, and their folds are a subset of the full run's.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np

from regime_platform.calendar import SESSIONS_PER_YEAR

MIN_LABELLED_SESSIONS = 300
SINGLE_SPLIT_TRAIN_FRACTION = 0.70


def embargo_last_train_t(first_test_t: int, window: int, horizon: int) -> int:
    """Largest training sample index allowed for a fold whose first test sample is ``first_test_t``."""
    return first_test_t - 2 * window - 2 * horizon + 1


def embargo_gap(last_train_t: int, first_test_t: int, window: int, horizon: int) -> int:
    """Sessions between the last training target and the first test window: ``(T-w+1) - (t+h)``."""
    return (first_test_t - window + 1) - (last_train_t + horizon)


@dataclass
class Fold:
    """One walk-forward fold. ``train_t`` / ``test_t`` are session indices ``t`` (window ends), ascending."""

    fold: int
    train_t: np.ndarray
    test_t: np.ndarray
    first_test_t: int
    last_train_t: int
    train_start: dt.date  # as_of of the first training sample
    train_end: dt.date  # as_of of the last training sample
    train_target_end: dt.date  # target date of the last training sample (t + h)
    test_start: dt.date
    test_end: dt.date
    test_target_end: dt.date  # target date of the last test sample
    window: int
    horizon: int
    test_year: int | None = None
    single_split: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def embargo_sessions(self) -> int:
        return embargo_gap(self.last_train_t, self.first_test_t, self.window, self.horizon)

    @property
    def n_train(self) -> int:
        return int(self.train_t.size)

    @property
    def n_test(self) -> int:
        return int(self.test_t.size)

    def describe(self) -> str:
        kind = "single chronological split" if self.single_split else f"test year {self.test_year}"
        return (
            f"fold {self.fold} ({kind}): train {self.train_start}…{self.train_end} ({self.n_train} samples, "
            f"targets to {self.train_target_end}), embargo {self.embargo_sessions} sessions, "
            f"test {self.test_start}…{self.test_end} ({self.n_test} samples)"
        )


def _make_fold(
    number: int,
    dates: list[dt.date],
    train_t: np.ndarray,
    test_t: np.ndarray,
    window: int,
    horizon: int,
    *,
    test_year: int | None,
    single_split: bool,
    notes: list[str] | None = None,
) -> Fold:
    return Fold(
        fold=number,
        train_t=train_t.astype(np.int64),
        test_t=test_t.astype(np.int64),
        first_test_t=int(test_t[0]),
        last_train_t=int(train_t[-1]),
        train_start=dates[int(train_t[0])],
        train_end=dates[int(train_t[-1])],
        train_target_end=dates[int(train_t[-1]) + horizon],
        test_start=dates[int(test_t[0])],
        test_end=dates[int(test_t[-1])],
        test_target_end=dates[int(test_t[-1]) + horizon],
        window=window,
        horizon=horizon,
        test_year=test_year,
        single_split=single_split,
        notes=list(notes or []),
    )


def walk_forward_folds(
    dates: list[dt.date],
    sample_t: np.ndarray,
    window: int,
    horizon: int,
    min_train_sessions: int = 1260,
    refit: str = "yearly",
    max_folds: int | None = None,
    *,
    first_session: int | None = None,
    min_labelled_sessions: int = MIN_LABELLED_SESSIONS,
) -> list[Fold]:
    """Folds over the candidate samples ``sample_t`` (session indices, see module docstring).

    ``first_session`` is the index of the first session with both a label and complete features; by
    default ``sample_t[0] - window + 1`` (the first row of the first complete window).
    """
    if refit != "yearly":
        raise ValueError(f"refit={refit!r} is not supported; only 'yearly' refits are implemented")
    if max_folds is not None and max_folds < 1:
        raise ValueError(f"max_folds must be ≥ 1 or None, got {max_folds}")
    dates = list(dates)
    sample_t = np.unique(np.asarray(sample_t, dtype=np.int64))
    if sample_t.size == 0:
        raise ValueError(
            "no labelled sessions with complete features: no window of "
            f"{window} complete feature rows has a label {horizon} sessions later"
        )
    if sample_t[-1] + horizon >= len(dates):
        raise ValueError("a sample's target lies past the last date")
    s0 = int(sample_t[0] - window + 1) if first_session is None else int(first_session)
    last_labelled = int(sample_t[-1] + horizon)
    n_labelled = last_labelled - s0 + 1
    if n_labelled < min_labelled_sessions:
        raise ValueError(
            f"only {n_labelled} labelled sessions with complete features ({dates[s0]} … {dates[last_labelled]}); "
            f"the walk-forward needs at least {min_labelled_sessions}. Provide a longer label history."
        )

    years = np.array([d.year for d in dates])
    sample_years = years[sample_t]
    first_test_year = None
    for year in range(int(years[s0]) + 1, int(years[-1]) + 1):
        first_idx = int(np.searchsorted(years, year))  # dates sorted => years sorted
        if first_idx - s0 >= min_train_sessions:
            first_test_year = year
            break

    enough = (
        first_test_year is not None
        and n_labelled >= min_train_sessions + SESSIONS_PER_YEAR
        and bool((sample_years >= first_test_year).any())
    )
    if not enough:
        return [_single_split(dates, sample_t, window, horizon, n_labelled, min_train_sessions)]

    folds: list[Fold] = []
    for number, year in enumerate(range(first_test_year, int(sample_years[-1]) + 1)):
        test_t = sample_t[sample_years == year]
        if test_t.size == 0:
            continue
        T = int(test_t[0])
        train_t = sample_t[sample_t <= embargo_last_train_t(T, window, horizon)]
        if train_t.size == 0:  # cannot happen with min_train_sessions ≫ 2w+2h, but be explicit
            continue
        folds.append(
            _make_fold(number, dates, train_t, test_t, window, horizon, test_year=year, single_split=False)
        )
    if max_folds is not None:
        folds = folds[-max_folds:]
    return folds


def _single_split(
    dates: list[dt.date],
    sample_t: np.ndarray,
    window: int,
    horizon: int,
    n_labelled: int,
    min_train_sessions: int,
) -> Fold:
    k = int(math.floor(SINGLE_SPLIT_TRAIN_FRACTION * sample_t.size))
    k = min(max(k, 1), sample_t.size - 1)
    T = int(sample_t[k])
    train_t = sample_t[sample_t <= embargo_last_train_t(T, window, horizon)]
    test_t = sample_t[k:]
    if train_t.size == 0:
        raise ValueError("too little history for a single chronological split once the embargo is applied")
    note = (
        f"single chronological split: {n_labelled} labelled sessions is less than the {min_train_sessions} "
        f"training sessions plus one test year ({SESSIONS_PER_YEAR}) a walk-forward needs; the first 70 % of "
        "the samples train, the rest test, with the same embargo"
    )
    return _make_fold(0, dates, train_t, test_t, window, horizon, test_year=None, single_split=True, notes=[note])


def validation_tail(
    train_t: np.ndarray,
    fraction: float = 0.15,
    gap: int | None = None,
    *,
    window: int = 30,
    horizon: int = 5,
    min_val: int = 20,
    min_fit: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Split training samples into ``(fit_t, val_t)``: an early-stopping tail carved from the END of the
    training span (never from test), with the same embargo between the fit part and the tail.

    The tail is the last ``ceil(fraction * n)`` samples; a fit sample ``t`` is kept only if
    ``(V - window + 1) - (t + horizon) >= gap`` where ``V`` is the first tail sample and ``gap`` defaults
    to ``window + horizon`` (the walk-forward embargo). When that leaves fewer than ``min_val`` tail or
    ``min_fit`` fit samples, returns ``(train_t, empty)``: no early stopping, fixed epochs.
    """
    train_t = np.asarray(train_t, dtype=np.int64)
    gap = window + horizon if gap is None else int(gap)
    empty = np.empty(0, dtype=np.int64)
    n_val = int(math.ceil(fraction * train_t.size)) if fraction > 0 else 0
    if n_val < min_val:
        return train_t, empty
    val_t = train_t[-n_val:]
    V = int(val_t[0])
    fit_t = train_t[(V - window + 1) - (train_t + horizon) >= gap]
    if fit_t.size < min_fit:
        return train_t, empty
    return fit_t, val_t
