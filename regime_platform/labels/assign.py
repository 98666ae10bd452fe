"""From a labeler or a user's file to the rows of market.regime_labels, with the profile and fit span."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from regime_platform.labels.labelers import labelable, make_labeler
from regime_platform.labels.profile import RegimeProfile, regime_profile

MINORITY_SHARE = 0.05  # a class under 5 % of rows is worth a warning; a missing class is an error

TABLE_SCHEMA = {"date": pl.Date, "regime": pl.Int32, "known_regime": pl.Int32, "regime_name": pl.Utf8,
                "labeler": pl.Utf8, "fit_start": pl.Date, "fit_end": pl.Date}


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


def class_balance(regimes, n_regimes: int) -> dict:
    """Counts and shares per id 0..K−1; `missing` ids have no rows (error), `rare` ones under 5 % (warn)."""
    values = np.asarray(regimes.to_numpy() if hasattr(regimes, "to_numpy") else regimes)
    values = values[values >= 0]
    counts = {i: int((values == i).sum()) for i in range(n_regimes)}
    total = max(1, sum(counts.values()))
    shares = {i: c / total for i, c in counts.items()}
    return {"counts": counts, "shares": shares,
            "missing": [i for i, c in counts.items() if c == 0],
            "rare": [i for i, s in shares.items() if 0 < s < MINORITY_SHARE]}
