"""Macro features at each session, point in time, and their causality verified by recomputation.

A feature at session t reads only market.macro rows with ``usable_from ≤ t`` (DESIGN §3a): the series' value at t is
the newest such row, NULL once it is older than ``STALE_SESSIONS`` of its frequency. Every feature is scale-free:
spreads in percentage points and their changes, or z-scores against a trailing window of sessions (NULL until the
whole window exists, like the price features):

- ``macro_vix_z_252``: the VIX close's z-score against its last 252 sessions (VIXCLS);
- ``macro_term_spread``, ``macro_term_spread_chg_63``: 10-year minus 2-year Treasury (T10Y2Y) and its 63-session change;
- ``macro_credit_spread``, ``macro_credit_spread_chg_63``: Moody's Baa − Aaa yield (BAA, AAA) and its 63-session change;
- ``macro_hy_spread_z_252``: the high-yield option-adjusted spread's z-score (BAMLH0A0HYM2).

:func:`causality_problems` recomputes the features of sampled dates from the rows whose *rule* ``usable_from``
(ingestion.macro, recomputed from each row's date, never read from storage) is at most that date, and compares them
with what the models read: a stored ``usable_from`` earlier than the rule, or a feature that reads by date instead of
by usability, shows as a difference. No Dagster here.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from regime_platform.ingestion import macro as rules
from regime_platform.ingestion.macro_sources import series_info

Z_WINDOW, CHANGE_SESSIONS = 252, 63
STALE_SESSIONS = {"daily": 10, "monthly": 63}
# feature → the series it reads
MACRO_INPUTS: dict[str, tuple[str, ...]] = {
    "macro_vix_z_252": ("VIXCLS",),
    "macro_term_spread": ("T10Y2Y",),
    "macro_term_spread_chg_63": ("T10Y2Y",),
    "macro_credit_spread": ("BAA", "AAA"),
    "macro_credit_spread_chg_63": ("BAA", "AAA"),
    "macro_hy_spread_z_252": ("BAMLH0A0HYM2",),
}
MACRO_FEATURES = list(MACRO_INPUTS)
MACRO_SERIES = sorted({s for names in MACRO_INPUTS.values() for s in names})
# sessions before the first one a feature is wanted at that its trailing window, change and staleness read: with
# them a feature computed on a short tail of sessions equals the one computed on the whole history (the ledger's case)
HISTORY_SESSIONS = Z_WINDOW + CHANGE_SESSIONS + max(STALE_SESSIONS.values())
TOLERANCE = 1e-12


def value_at(sessions: list[dt.date], rows: pl.DataFrame, series: str) -> pl.Series:
    """The value of ``series`` usable at each session (newest row with usable_from ≤ t), NULL when stale or absent."""
    grid = pl.DataFrame({"date": sessions, "i": range(len(sessions))}, schema={"date": pl.Date, "i": pl.Int64})
    mine = rows.filter(pl.col("series") == series)
    if mine.is_empty():
        return pl.Series(series, [None] * len(sessions), dtype=pl.Float64)
    mine = (mine.sort("usable_from", "date").unique("usable_from", keep="last", maintain_order=True)
            .select(pl.col("usable_from"), pl.col("value")))
    known = grid.join_asof(mine, left_on="date", right_on="usable_from", strategy="backward")
    usable = known["usable_from"]
    # age of the usable row in sessions: how many sessions of the grid lie between its usable_from and t
    at = np.searchsorted(np.array(sessions, dtype="datetime64[D]"),
                         usable.fill_null(dt.date(1900, 1, 1)).to_numpy().astype("datetime64[D]"))
    fresh = usable.is_not_null().to_numpy() & (np.arange(len(sessions)) - at <= STALE_SESSIONS[
        series_info(series).frequency])
    values = known["value"].to_numpy().astype(float)
    return pl.Series(series, np.where(fresh, values, np.nan)).fill_nan(None)


def _z(x: pl.Expr, window: int) -> pl.Expr:
    return (x - x.rolling_mean(window)) / x.rolling_std(window)


def macro_features(sessions: list[dt.date], rows: pl.DataFrame) -> pl.DataFrame:
    """date, then every MACRO_FEATURES column at each of ``sessions`` (sorted XNYS sessions), from market.macro rows."""
    sessions = sorted(sessions)
    frame = pl.DataFrame({"date": sessions, **{s: value_at(sessions, rows, s) for s in MACRO_SERIES}},
                         schema={"date": pl.Date, **{s: pl.Float64 for s in MACRO_SERIES}})
    credit = pl.col("BAA") - pl.col("AAA")
    out = frame.select(
        "date",
        _z(pl.col("VIXCLS"), Z_WINDOW).alias("macro_vix_z_252"),
        pl.col("T10Y2Y").alias("macro_term_spread"),
        (pl.col("T10Y2Y") - pl.col("T10Y2Y").shift(CHANGE_SESSIONS)).alias("macro_term_spread_chg_63"),
        credit.alias("macro_credit_spread"),
        (credit - credit.shift(CHANGE_SESSIONS)).alias("macro_credit_spread_chg_63"),
        _z(pl.col("BAMLH0A0HYM2"), Z_WINDOW).alias("macro_hy_spread_z_252"),
    )
    return out.with_columns([pl.col(c).fill_nan(None) for c in MACRO_FEATURES])


def covering(features: pl.DataFrame, start: dt.date, end: dt.date) -> tuple[list[str], list[str]]:
    """The macro features with a value at every session start … end, and a sentence for each one left out."""
    span = features.filter(pl.col("date").is_between(start, end))
    used, notes = [], []
    for name in MACRO_FEATURES:
        nulls = span[name].null_count()
        if span.height and nulls == 0:
            used.append(name)
            continue
        have = span.filter(pl.col(name).is_not_null())["date"]
        covered = f"it has values {have.min()} … {have.max()} only" if have.len() else "market.macro holds no " \
            f"{' / '.join(MACRO_INPUTS[name])} usable then"
        notes.append(f"{name} is left out: the labelled span {start} … {end} needs a value every session and {covered}.")
    return used, notes


def with_macro(frame: pl.DataFrame, rows: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """``frame`` (one row per session, a ``date`` column) with the macro features ``names`` joined on date."""
    if not names:
        return frame
    computed = macro_features(frame["date"].to_list(), rows).select("date", *names)
    return frame.join(computed, on="date", how="left", maintain_order="left")


def model_inputs(frame: pl.DataFrame, rows: pl.DataFrame, price_features: list[str]) -> tuple[pl.DataFrame, list[str],
                                                                                                 list[str]]:
    """REGIME_MACRO=auto: the macro features with a value at every session from the first with complete
    ``price_features`` to the last, joined to ``frame``; returns (frame, the features added, a sentence per one left
    out)."""
    complete = frame.filter(pl.all_horizontal(pl.col(c).is_not_null() for c in price_features))
    if complete.is_empty():
        return frame, [], ["no macro feature is added: no session has every price feature yet."]
    used, notes = covering(macro_features(frame["date"].to_list(), rows), complete["date"].min(), frame["date"].max())
    return with_macro(frame, rows, used), used, notes


def causality_problems(rows: pl.DataFrame, sessions: list[dt.date], dates: list[dt.date], lag: int,
                       read: pl.DataFrame | None = None) -> list[str]:
    """Recompute the macro features of ``dates`` from the rows usable by the rule at each date (and the sessions up
    to it); list every difference from ``read`` (what the models read; default: :func:`macro_features` of every
    stored row) and every stored usable_from earlier than the rule."""
    if rows.is_empty():
        return []
    problems: list[str] = []
    rule = rules.quality_report(rows, lag)  # the stored usable_from against the rule
    problems += [f"market.macro: {e}" for e in rule.errors if "usable from" in e]
    sessions = sorted(sessions)
    grid = rules.session_grid(rows["date"].min(), max(sessions[-1], rows["date"].max()))
    truth = rows.with_columns(pl.Series("usable_from", [rules.usable_from(d, s, lag, grid) for d, s in
                                                        zip(rows["date"].to_list(), rows["series"].to_list())],
                                        dtype=pl.Date))
    read = macro_features(sessions, rows) if read is None else read
    for day in sorted(set(dates) & set(sessions)):
        upto = [s for s in sessions if s <= day]
        recomputed = macro_features(upto, truth.filter(pl.col("usable_from") <= day)).filter(pl.col("date") == day)
        stored = read.filter(pl.col("date") == day)
        for name in MACRO_FEATURES:
            a, b = stored[name][0] if stored.height else None, recomputed[name][0]
            if (a is None) != (b is None) or (a is not None and abs(a - b) > TOLERANCE * max(1.0, abs(a))):
                problems.append(f"{name} on {day} is {a} but {b} from the values usable by then: it reads macro values "
                                "published later (a look-ahead)")
    return problems


__all__ = ["CHANGE_SESSIONS", "MACRO_FEATURES", "MACRO_INPUTS", "MACRO_SERIES", "STALE_SESSIONS", "Z_WINDOW",
           "causality_problems", "covering", "macro_features", "model_inputs", "value_at", "with_macro"]
