"""market.macro rows from what a source answered: the point-in-time rule (``usable_from``) and the quality rules.

Point in time (DESIGN §3a): a daily value dated d is usable from the ``lag``-th XNYS session after d (REGIME_MACRO_LAG,
default 1: FRED posts a day's value the next morning); a monthly value (dated the month's first day) from the first
session after its month ends plus the series' stated publication lag (macro_sources.CATALOG). A feature at t reads
only rows with ``usable_from ≤ t``.

Quality: FRED's ``"."`` is a missing value, never 0. A daily series' session without a value (a FRED holiday such as
Columbus Day, or a "."), inside the span it was observed, gets the previous value carried forward for at most
``MAX_CARRY_SESSIONS`` sessions and is flagged (``filled_from`` = the date carried from); a longer gap stays missing,
and nothing is carried past the last value (today's is not published yet). No Dagster here.
"""
from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from regime_platform import calendar
from regime_platform.ingestion.macro_sources import MacroAnswer, MacroSourceError, series_info

MAX_CARRY_SESSIONS = 3
# A run re-reads this many days before its first partition, so a monthly value published after its month ends
# (and the value a gap at the start carries from) is stored by the run that can first see it.
REFETCH_DAYS = 62
ROW_SCHEMA = {"date": pl.Date, "series": pl.String, "value": pl.Float64, "usable_from": pl.Date,
              "filled_from": pl.Date, "source": pl.String, "ingested_at": pl.Datetime("us")}


def session_grid(first: dt.date, last: dt.date) -> list[dt.date]:
    """XNYS sessions from ``first`` to about four months past ``last`` (room for every lag), inside the calendar."""
    start = max(first, calendar.first_day())
    stop = min(last + dt.timedelta(days=125), calendar.last_day())
    return calendar.sessions(start, stop) if start <= stop else []


def usable_from(day: dt.date, series: str, lag: int, sessions: list[dt.date]) -> dt.date | None:
    """The first session at whose close the value of ``series`` dated ``day`` may be used (None: past the calendar)."""
    info = series_info(series)
    if info.frequency == "monthly":
        month_end = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        i = bisect.bisect_right(sessions, month_end) + info.publication_lag
    else:
        i = bisect.bisect_right(sessions, day) + lag - 1 if lag >= 1 else bisect.bisect_left(sessions, day)
    return sessions[i] if 0 <= i < len(sessions) else None


@dataclass
class MacroRows:
    """The rows of one series to store, and what the rules did to get them."""

    series: str
    rows: pl.DataFrame
    observations: int
    missing: int  # FRED "." (or NaN) values read
    carried: int
    gaps: list[dt.date] = field(default_factory=list)  # sessions left missing (beyond the carry limit)


def build_rows(answer: MacroAnswer, lag: int, now: dt.datetime) -> MacroRows:
    """The market.macro rows of one answered series (see the module's rules); an answer without one value raises."""
    name, frame = answer.series, answer.frame.sort("date")
    observed = frame.filter(pl.col("value").is_not_null() & pl.col("value").is_finite())
    if observed.is_empty():
        raise MacroSourceError(f"{answer.source} answered {name} with no value in the requested span: nothing of "
                               f"{name} was stored.")
    dates, values = observed["date"].to_list(), observed["value"].to_list()
    sessions = session_grid(dates[0], dates[-1])
    out_dates, out_values, filled = list(dates), list(values), [None] * len(dates)
    gaps: list[dt.date] = []
    if series_info(name).frequency == "daily":
        have = set(dates)
        for s in sessions:
            if s > dates[-1]:
                break
            if s < dates[0] or s in have:
                continue
            k = bisect.bisect_right(dates, s) - 1  # the last value before s
            elapsed = bisect.bisect_right(sessions, s) - bisect.bisect_right(sessions, dates[k])
            if elapsed <= MAX_CARRY_SESSIONS:
                out_dates.append(s)
                out_values.append(values[k])
                filled.append(dates[k])
            else:
                gaps.append(s)
    rows = pl.DataFrame({
        "date": out_dates, "series": name, "value": out_values,
        "usable_from": [usable_from(d, name, lag, sessions) for d in out_dates], "filled_from": filled,
        "source": answer.source, "ingested_at": now}, schema=ROW_SCHEMA).sort("date")
    unplaced = rows.filter(pl.col("usable_from").is_null())
    if unplaced.height:
        raise MacroSourceError(f"{name} has a value dated {unplaced['date'][0]} whose usable session lies past the "
                               "exchange calendar: nothing of it was stored; update exchange-calendars.")
    return MacroRows(name, rows, observed.height, frame.height - observed.height,
                     sum(f is not None for f in filled), gaps)


@dataclass
class MacroQuality:
    errors: list[str]
    warnings: list[str]
    rows: dict[str, int]


def quality_report(stored: pl.DataFrame, lag: int) -> MacroQuality:
    """The stored market.macro rows against the rules: ERROR on a duplicate key, a non-finite value, a ``usable_from``
    that is not the rule's (a look-ahead when earlier) or a carry longer than the limit; WARN on gaps left missing."""
    errors, warnings, counts = [], [], {}
    for (name,), rows in stored.sort("series", "date").group_by(["series"], maintain_order=True):
        counts[name] = rows.height
        dup = rows.filter(pl.col("date").is_duplicated())
        if dup.height:
            errors.append(f"{name}: {dup.height} rows share a date (first {dup['date'][0]}).")
        bad = rows.filter(pl.col("value").is_null() | ~pl.col("value").is_finite())
        if bad.height:
            errors.append(f"{name}: {bad.height} rows have no finite value (first {bad['date'][0]}).")
        dates = rows["date"].to_list()
        sessions = session_grid(dates[0], dates[-1])
        expected = [usable_from(d, name, lag, sessions) for d in dates]
        wrong = [(d, u, e) for d, u, e in zip(dates, rows["usable_from"].to_list(), expected) if u != e]
        if wrong:
            d, u, e = wrong[0]
            kind = "a look-ahead" if u is None or e is None or u < e else "later than the rule"
            errors.append(f"{name}: {len(wrong)} rows are usable from another session than the rule gives (first: "
                          f"dated {d}, stored {u}, rule {e}: {kind}); re-materialize macro (REGIME_MACRO_LAG={lag}).")
        carried = rows.filter(pl.col("filled_from").is_not_null())
        for d, f in zip(carried["date"].to_list(), carried["filled_from"].to_list()):
            if bisect.bisect_right(sessions, d) - bisect.bisect_right(sessions, f) > MAX_CARRY_SESSIONS:
                errors.append(f"{name}: the value dated {d} is carried from {f}, more than {MAX_CARRY_SESSIONS} "
                              "sessions; re-materialize macro.")
                break
        if series_info(name).frequency == "daily":
            missing = sorted(set(s for s in sessions if s <= dates[-1]) - set(dates))
            if missing:
                warnings.append(f"{name}: {len(missing)} sessions between {dates[0]} and {dates[-1]} have no value "
                                f"(gaps longer than {MAX_CARRY_SESSIONS} sessions are never filled; first {missing[0]}).")
    return MacroQuality(errors, warnings, counts)


__all__ = ["MAX_CARRY_SESSIONS", "REFETCH_DAYS", "ROW_SCHEMA", "MacroQuality", "MacroRows", "build_rows",
           "quality_report", "session_grid", "usable_from"]
