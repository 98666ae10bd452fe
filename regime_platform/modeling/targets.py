"""Each fold's regime targets: a user's labels as given, or a generated labeler refit inside the fold.

* :class:`GivenLabels` — a user's file: the same labels every fold, ``known_regime`` = the label
  ``label_lag`` sessions earlier, no labeler fit range.
* :class:`RefitLabels` — a generated labeler refit on each fold's training span: training targets are
  ``predict`` over the training span only (appending later rows can flip the last labels of a smoothed
  path), test targets the *settled* label (DESIGN §3a): ``predict`` over training + test span + the ``settle``
  sessions after it (truth only, never inputs), and none for a date with fewer than ``settle`` sessions after
  it in the data; ``known_regime`` = ``predict_online``; the fit range and the labeler's mapping from its raw
  states to the stored ids are recorded.

Both return a :class:`FoldLabels` aligned to the session list: int arrays with -1 = no label.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl

from regime_platform.labels.assign import configured_regimes
from regime_platform.labels.labelers import labelable, make_labeler
from regime_platform.modeling.sequences import MISSING, as_label_array


@dataclass
class FoldLabels:
    """Labels for one fold, aligned to ``dates``; int arrays with -1 = no label."""

    dates: list[dt.date]
    train_regime: np.ndarray  # hindsight `predict` over the training span only; -1 outside it
    test_regime: np.ndarray  # the settled label: `predict` over a span reaching `settle` sessions past each date
    known_regime: np.ndarray  # causal assignment at each date
    n_classes: int
    fit_start: dt.date | None  # None for a user's file
    fit_end: dt.date | None
    labeler: str = "user"
    regime_names: list[str] | None = None
    state_mapping: dict[int, int] = field(default_factory=dict)  # refit labeler: raw state → stored id
    truth_fit_end: dt.date | None = None  # the last session the test targets' labeler saw (truth only, DESIGN §3a)

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
            self.n_classes, self.fit_start, self.fit_end, self.labeler, self.regime_names, self.state_mapping,
            self.truth_fit_end,
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

    def __init__(self, frame: pl.DataFrame, make_labeler: Callable[[], Any], *, name: str | None = None,
                 settle: int = 0) -> None:
        if "date" not in frame.columns:
            raise ValueError("the labeler frame needs a `date` column")
        frame = frame.sort("date")
        if frame["date"].is_duplicated().any():
            raise ValueError("the labeler frame has duplicate dates")
        self.frame = frame
        self.make_labeler = make_labeler
        self.name = name
        self.settle = int(settle)
        self.dates = frame["date"].to_list()

    def labelled_dates(self) -> list[dt.date]:
        return list(self.dates)

    def fold_labels(self, train_target_end: dt.date, test_target_end: dt.date | None = None) -> FoldLabels:
        train_frame = self.frame.filter(pl.col("date") <= train_target_end)
        if train_frame.height == 0:
            raise ValueError(f"no labeler rows on or before {train_target_end}")
        labeler = self.make_labeler().fit(train_frame)
        if test_target_end is None:  # the production fit: one labeler on everything
            span, truth = self.frame, labeler
        else:  # the truth: a labeler refit through the test span and the `settle` sessions after it — never an input
            span = self.frame.head(self.frame.filter(pl.col("date") <= test_target_end).height + self.settle)
            truth = self.make_labeler().fit(span)
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
        settled = padded(truth.predict(span), span.height)
        if self.settle:  # a date with fewer than `settle` sessions after it in the truth's fit has not settled
            settled[max(0, span.height - self.settle):span.height] = MISSING
        return FoldLabels(
            self.dates,
            padded(labeler.predict(train_frame), train_frame.height),
            settled,
            padded(labeler.predict_online(span), span.height),
            K,
            train_frame["date"][0],
            train_frame["date"][-1],
            self.name or getattr(labeler, "name", type(labeler).__name__),
            list(names) if names is not None else None,
            {int(k): int(v) for k, v in (getattr(labeler, "state_mapping", None) or {}).items()},
            span["date"][-1],
        )


# ---------------------------------------------------------------------------------------------- computed once
PRODUCTION_FOLD = -1  # the fold number under which the production fit's labels (all labelled history) are stored


@dataclass
class WalkForwardTargets:
    """Every fold's labels of one labeler and horizon, computed once and shared by every model.

    ``folds`` and ``labels`` line up; ``production`` are the labels the production fit learns from (the labeler
    fit on all labelled history). ``fold_table`` / ``label_rows`` are what the warehouse stores.
    """

    labeler: str
    horizon: int
    folds: list[Any]  # regime_platform.modeling.folds.Fold
    labels: list[FoldLabels]
    production: FoldLabels
    user_labels: bool
    fold_table: pl.DataFrame
    label_rows: pl.DataFrame
    unsettled: dict[int, int] = field(default_factory=dict)  # fold → test targets left unscored (not yet settled)


class StoredFoldTargets:
    """:class:`FoldTargets` answered from labels computed once (by the ``walk_forward_targets`` asset).

    Asking for a fold that was not computed (the settings changed since) is an error that says what to do.
    """

    def __init__(self, dates: Sequence[dt.date], folds: dict[dt.date, FoldLabels], production: FoldLabels,
                 user_labels: bool) -> None:
        self.dates = list(dates)
        self.by_train_target_end = folds
        self.production = production.align(self.dates)
        self.user_labels = user_labels

    def labelled_dates(self) -> list[dt.date]:
        return [d for d, r in zip(self.production.dates, self.production.train_regime) if r >= 0]

    def fold_labels(self, train_target_end: dt.date, test_target_end: dt.date | None = None) -> FoldLabels:
        if train_target_end in self.by_train_target_end:
            return self.by_train_target_end[train_target_end].align(self.dates)
        labelled = self.labelled_dates()
        if test_target_end is None and labelled and train_target_end >= labelled[-1]:
            return self.production
        raise ValueError(f"the stored walk-forward targets have no fold whose training targets end {train_target_end}: "
                         "the settings or data changed since; re-materialize walk_forward_targets.")


def label_rows(labeler: str, horizon: int, fold: int, labels: FoldLabels) -> pl.DataFrame:
    """The rows of ``market.fold_labels`` for one fold (sessions where any of the three labels exists)."""
    keep = (labels.train_regime >= 0) | (labels.test_regime >= 0) | (labels.known_regime >= 0)
    idx = np.flatnonzero(keep)

    def col(arr: np.ndarray) -> list[int | None]:
        return [int(v) if v >= 0 else None for v in arr[idx]]

    return pl.DataFrame({
        "labeler": labeler, "horizon": horizon, "fold": fold,
        "date": [labels.dates[i] for i in idx],
        "train_regime": col(labels.train_regime), "test_regime": col(labels.test_regime),
        "known_regime": col(labels.known_regime),
    }, schema={"labeler": pl.String, "horizon": pl.Int32, "fold": pl.Int32, "date": pl.Date,
               "train_regime": pl.Int32, "test_regime": pl.Int32, "known_regime": pl.Int32})


def labels_from_rows(dates: Sequence[dt.date], rows: pl.DataFrame, meta: dict[str, Any]) -> FoldLabels:
    """One fold's :class:`FoldLabels` back from its stored rows and its ``market.walk_forward_folds`` row."""
    pos = {d: i for i, d in enumerate(dates)}
    n = len(dates)
    arrays = {c: np.full(n, MISSING, dtype=np.int64) for c in ("train_regime", "test_regime", "known_regime")}
    idx = np.array([pos.get(d, -1) for d in rows["date"].to_list()], dtype=np.int64)
    have = idx >= 0
    for c, arr in arrays.items():
        values = rows[c].fill_null(MISSING).to_numpy().astype(np.int64)
        arr[idx[have]] = values[have]
    import json

    mapping = {int(k): int(v) for k, v in json.loads(meta.get("state_mapping") or "{}").items()}
    return FoldLabels(list(dates), arrays["train_regime"], arrays["test_regime"], arrays["known_regime"],
                      int(meta["n_classes"]), meta.get("labeler_fit_start"), meta.get("labeler_fit_end"),
                      meta["labeler"], None, mapping, meta.get("truth_fit_end"))


def stored_fold_targets(dates: Sequence[dt.date], folds: pl.DataFrame, rows: pl.DataFrame) -> StoredFoldTargets:
    """Rebuild :class:`StoredFoldTargets` from ``market.walk_forward_folds`` and ``market.fold_labels`` rows."""
    if folds.is_empty():
        raise ValueError("market.walk_forward_folds has no folds for this labeler and horizon: materialize "
                         "walk_forward_targets first.")
    by_end: dict[dt.date, FoldLabels] = {}
    production = None
    for meta in folds.to_dicts():
        labels = labels_from_rows(dates, rows.filter(pl.col("fold") == meta["fold"]), meta)
        if meta["fold"] == PRODUCTION_FOLD:
            production = labels
        else:
            by_end[meta["train_target_end"]] = labels
    if production is None:
        raise ValueError("market.walk_forward_folds lacks the production labels: re-materialize walk_forward_targets.")
    return StoredFoldTargets(dates, by_end, production, user_labels=production.labeler == "user")


def walk_forward_labels(frame: pl.DataFrame, stored: pl.DataFrame, settle: int = 0):
    """How the walk-forward gets each fold's labels, following what ``market.regime_labels`` holds: a user's file
    is taken as given in every fold; a generated labeler is refit inside each fold on its training span, its test
    targets settled ``settle`` sessions (``Settings.settle_sessions_for``).

    ``frame``: the labeler frame (date, features, adj_close); ``stored``: ``market.regime_labels``.
    """
    if stored.is_empty():
        raise ValueError("market.regime_labels is empty: materialize regime_labels first.")
    labeler = stored["labeler"][0]
    if labeler == "user":
        aligned = frame.select("date").join(stored, on="date", how="left")
        return GivenLabels(frame["date"].to_list(), aligned["regime"].fill_null(-1).to_numpy(),
                           aligned["known_regime"].fill_null(-1).to_numpy(),
                           n_classes=configured_regimes("user", stored["regime"]))
    usable = labelable(frame, make_labeler(labeler))
    return RefitLabels(usable, lambda: make_labeler(labeler), name=labeler, settle=settle)

