"""The `no_leakage` recompute of ``known_regime``: the regime known after the close of t, read by the persistence
baseline and the transition metrics, must come from data through t only (DESIGN §3a) — verified, not assumed.

For a few sampled out-of-sample rows of a model (:func:`sample_dates`: the sessions where the stored known regime
changes, where a look-ahead shows first, spread over the test span, and its last session; in the first and the last
fold), the known regime at the row's ``as_of`` = d is recomputed from the stored inputs and compared with the stored
value:

* a generated labeler: a fresh labeler of the fold's kind is fit on exactly the fold's recorded fit range
  (``labeler_fit_start`` … ``labeler_fit_end``, which must end on or before d) and run online
  (``predict_online``) over the labelled sessions up to d and no further; its label at d must equal the stored one.
  The fold's own fit, not a refit through d: DESIGN §2 has the walk-forward's ``known_regime`` come from the fold's
  labeler, and a labeler refit through d is another labeler, whose disagreement would say nothing about leakage;
  what must hold is that nothing after d was read.
* a user's file: the label ``label_lag`` sessions before d in ``market.regime_labels``.

A stored value that a hindsight label, a fit past d or an online pass that reads ahead produced differs at such dates.
Pure polars/numpy over the labels package, no Dagster.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from regime_platform.labels.labelers import labelable, make_labeler
from regime_platform.modeling.leakage import as_date
from regime_platform.modeling.sequences import as_label_array

FOLDS_SAMPLED = 2  # the first and the last fold: the shortest and the longest labeler fit
DATES_PER_FOLD = 6


@dataclass
class KnownRegimeInputs:
    """What the regime known at a date is recomputed from: the labeler frame the fold targets were made from (date,
    adj_close and the features; ``market.features`` joined with ``market.ohlcv``), the stored ``market.regime_labels``
    (date, regime, labeler) and the label lag setting (a user's file only)."""

    frame: pl.DataFrame
    stored_labels: pl.DataFrame
    label_lag: int = 0

    @property
    def labeler(self) -> str | None:
        return self.stored_labels["labeler"][0] if self.stored_labels.height else None


def sample_dates(as_of: Sequence[dt.date], known: Sequence[int | None], n: int = DATES_PER_FOLD) -> list[dt.date]:
    """Up to ``n`` of the sessions ``as_of`` (sorted): the last session and the changes of ``known`` spread evenly,
    topped up with sessions spread evenly over the span when it changes fewer times."""
    if not as_of:
        return []
    changes = [i for i in range(1, len(known)) if known[i] != known[i - 1]]
    if len(changes) > n - 1:
        changes = [changes[int(j)] for j in np.linspace(0, len(changes) - 1, n - 1).round()]
    picked = set(changes) | {len(as_of) - 1}
    for i in np.linspace(0, len(as_of) - 1, n).round().astype(int):
        if len(picked) >= n:
            break
        picked.add(int(i))
    return [as_of[i] for i in sorted(picked)]


def _online_label(labeler: Any, rows: pl.DataFrame, as_of: dt.date) -> int | None:
    through = rows.filter(pl.col("date") <= as_of)
    if through.is_empty() or through["date"][-1] != as_of:
        return None
    value = int(as_label_array(np.asarray(labeler.predict_online(through), dtype=float))[-1])
    return None if value < 0 else value


def verify_known_regime(records: Sequence[dict[str, Any]], oos: pl.DataFrame, inputs: KnownRegimeInputs, *,
                        folds: int = FOLDS_SAMPLED, per_fold: int = DATES_PER_FOLD) -> tuple[list[str], int]:
    """Problems (one sentence each) and how many dates were recomputed; see the module docstring. ``oos``: the model's
    stored rows (fold, horizon, as_of, known_regime); ``records``: its fold records (``market.fold_records``)."""
    labeler_name = inputs.labeler
    if oos is None or oos.is_empty() or labeler_name is None:
        return [], 0  # no rows or no labels: verify_oos_rows and the labels checks say so
    with_rows = [r for r in records if r.get("fold") is not None and r.get("horizon") is not None
                 and oos.filter((pl.col("fold") == int(r["fold"])) & (pl.col("horizon") == int(r["horizon"]))).height]
    chosen = list({id(r): r for r in [*with_rows[:1], *with_rows[-1:]][:folds]}.values())
    user = labeler_name == "user"
    if user:
        stored = inputs.stored_labels.sort("date")
        position = {d: i for i, d in enumerate(stored["date"].to_list())}
        regimes = stored["regime"].to_list()
    else:
        rows = labelable(inputs.frame.sort("date"), make_labeler(labeler_name))
    problems: list[str] = []
    checked = 0
    for rec in chosen:
        name = f"fold {rec['fold']}"
        part = oos.filter((pl.col("fold") == int(rec["fold"])) & (pl.col("horizon") == int(rec["horizon"]))) \
            .unique("as_of").sort("as_of")
        stored_known = dict(zip(part["as_of"].to_list(), part["known_regime"].to_list()))
        picked = sample_dates(part["as_of"].to_list(), part["known_regime"].to_list(), per_fold)
        if user:
            def recompute(d: dt.date) -> int | None:
                i = position.get(d)
                return None if i is None or i < inputs.label_lag else regimes[i - inputs.label_lag]
            source = f"the label {inputs.label_lag} sessions earlier in market.regime_labels"
        else:
            fit_start, fit_end = as_date(rec.get("labeler_fit_start")), as_date(rec.get("labeler_fit_end"))
            if fit_start is None or fit_end is None:
                problems.append(f"{name}: the labeler fit range is not recorded, so known_regime cannot be recomputed; "
                                "re-materialize the model")
                continue
            first = part["as_of"][0]
            if fit_end > first:
                problems.append(f"{name}: known_regime at {first} comes from a labeler fit through {fit_end}, "
                                "after that date: re-materialize walk_forward_targets and the model")
                continue
            labeler = make_labeler(labeler_name).fit(rows.filter(pl.col("date").is_between(fit_start, fit_end)))

            def recompute(d: dt.date, labeler=labeler) -> int | None:
                return _online_label(labeler, rows, d)
            source = f"the {labeler_name} labeler fit on {fit_start} … {fit_end}, run online through that date only,"
        for d in picked:
            checked += 1
            expected, got = recompute(d), stored_known[d]
            if expected != got:
                problems.append(
                    f"{name}: the stored known_regime at {d} is {got}, but {source} gives {expected}: the regime "
                    "persistence and the transition metrics read as known was not computed from data through that "
                    "date; fix how the fold's known_regime is made, then re-materialize walk_forward_targets and the "
                    "model")
    return problems, checked
