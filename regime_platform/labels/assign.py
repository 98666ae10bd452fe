"""From a labeler or a user's file to the rows of market.regime_labels, with the profile and fit span."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from regime_platform import storage as warehouse
from regime_platform.labels.labelers import labelable, make_labeler
from regime_platform.labels.profile import RegimeProfile, regime_profile
from regime_platform.labels.user_file import read_user_labels
from regime_platform.labels.version import labels_version

TABLE_SCHEMA = warehouse.body_schema("regime_labels")  # storage adds the ticker key


@dataclass
class LabelResult:
    table: pl.DataFrame
    profile: RegimeProfile
    labeler: str
    fit_start: dt.date | None = None
    fit_end: dt.date | None = None
    state_mapping: dict[int, int] = field(default_factory=dict)


def _result(frame: pl.DataFrame, regime, known, names: list[str] | None, labeler: str,
            fit_start, fit_end, mapping) -> LabelResult:
    regime = np.asarray(regime)
    table = pl.DataFrame({
        "date": frame["date"],
        "regime": regime,
        "known_regime": known,
        "regime_name": [names[i] for i in regime] if names else frame["regime_name"],
        "labeler": labeler, "fit_start": fit_start, "fit_end": fit_end,
    }, schema=TABLE_SCHEMA)
    prices = frame.select("date", "adj_close") if "adj_close" in frame.columns else None
    profile = regime_profile(table.join(prices, on="date")) if prices is not None else None
    return LabelResult(table, profile, labeler, fit_start, fit_end, mapping)


def assign_generated(frame: pl.DataFrame, labeler_name: str, fit_end: dt.date | None = None,
                     **params) -> LabelResult:
    """Fit `labeler_name` on the labelable rows up to `fit_end` (default: all) and label every labelable row."""
    labeler = make_labeler(labeler_name, **params)
    rows = labelable(frame, labeler)
    fit_rows = rows if fit_end is None else rows.filter(pl.col("date") <= fit_end)
    labeler.fit(fit_rows)
    return _result(rows, labeler.predict(rows), labeler.predict_online(rows), labeler.regime_names,
                   labeler_name, labeler.fit_start, labeler.fit_end, labeler.state_mapping)


def assign_user(user: pl.DataFrame, prices: pl.DataFrame, label_lag: int = 0) -> LabelResult:
    """A user's labels as given; the regime known at t is the label `label_lag` sessions earlier.

    `prices` (date, adj_close) feed the profile; label dates without a price are kept but not profiled.
    """
    frame = user.sort("date")
    known = frame["regime"].shift(label_lag) if label_lag else frame["regime"]
    result = _result(frame, frame["regime"].to_numpy(), known, None, "user", None, None, {})
    result.profile = regime_profile(result.table.join(prices.select("date", "adj_close"), on="date"))
    return result


def configured_regimes(labeler: str, stored_regimes) -> int:
    """K for the class-balance rule: a generated labeler's configured number of regimes; for a user's file
    its declared ids 0 … max (the file rules require every id to be present, so max + 1 is what it declared)."""
    if labeler == "user":
        values = np.asarray(stored_regimes.to_numpy() if hasattr(stored_regimes, "to_numpy") else stored_regimes)
        return int(values.max()) + 1
    return int(make_labeler(labeler).n_regimes)


def assign(frame: pl.DataFrame, user_labels_path, labeler: str, label_lag: int = 0) -> LabelResult:
    """The one place that chooses: the user's labels file when it exists (validated strictly; REGIME_LABELER is
    then ignored), else the generated ``labeler`` fit on all labelled history."""
    if Path(user_labels_path).exists():
        user = read_user_labels(Path(user_labels_path), sessions=frame["date"].to_list())
        return assign_user(user, frame, label_lag=label_lag)
    return assign_generated(frame, labeler)


@dataclass(frozen=True)
class KnownRegime:
    """The regime known after the close of a session, and the version of the labels it came from."""

    regime: int
    labels_version: str


def known_regime_at(frame: pl.DataFrame, user_labels_path, labeler: str, label_lag: int,
                    as_of: dt.date, stored: pl.DataFrame | None = None) -> KnownRegime | None:
    """The regime known after the close of ``as_of`` from data through ``as_of`` only — what a daily run stores,
    and what a range or a re-run recomputes for each of its sessions (never labels fit after ``as_of``): a generated
    labeler fit on the sessions up to ``as_of``, its online label there; a user's file, its label ``label_lag``
    sessions before ``as_of`` (the file needs to reach only that session). None when the labels do not reach it.

    ``stored`` (the ticker's market.regime_labels) is used instead of a second fit when it is that very fit: the same
    generated labeler, fit through ``as_of`` — what the labels step of the day's run has just stored."""
    through = frame.filter(pl.col("date") <= as_of)
    if through.is_empty():
        return None
    if Path(user_labels_path).exists():
        sessions = through["date"].to_list()
        if sessions[-1] != as_of or len(sessions) <= label_lag:
            return None
        known_at = sessions[-1 - label_lag]
        user = read_user_labels(Path(user_labels_path), sessions=sessions)
        used = user.filter(pl.col("date") <= known_at).with_columns(pl.lit("user").alias("labeler"))
        row = used.filter(pl.col("date") == known_at)
        return None if row.is_empty() else KnownRegime(int(row["regime"][0]), labels_version(used))
    table = stored if fit_through(stored, labeler) == as_of else assign_generated(through, labeler).table
    row = table.filter(pl.col("date") == as_of)
    if row.is_empty() or row["known_regime"][0] is None:
        return None
    return KnownRegime(int(row["known_regime"][0]), labels_version(table))


def fit_through(stored: pl.DataFrame | None, labeler: str) -> dt.date | None:
    """The last session ``labeler`` was fit on for the stored labels ``stored`` when they are that generated labeler's
    fit on every session up to their last one (so equal to a fit through that session now); else None."""
    if stored is None or stored.is_empty() or stored["labeler"][0] != labeler or stored["labeler"].n_unique() != 1:
        return None
    fit_end, last = stored["fit_end"].max(), stored["date"].max()
    return last if fit_end == last and stored["fit_end"].n_unique() == 1 else None
