"""XNYS trading sessions, from exchange-calendars (the one source of truth for which days trade), and when a
session's daily outputs are due: a holiday or a weekend is never overdue. The daily schedule runs at 18:00 New York
time; a session's partition is due by 19:30 New York time on that session's date (early closes included)."""
from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

# The annualisation convention, everywhere: a year is 252 sessions. A mean daily return × SESSIONS_PER_YEAR is
# an annual return; a daily standard deviation (volatility, Sharpe) × SQRT_SESSIONS_PER_YEAR is an annual one.
SESSIONS_PER_YEAR = 252
SQRT_SESSIONS_PER_YEAR = math.sqrt(SESSIONS_PER_YEAR)

# exchange-calendars' default window starts 20 years ago and older dates raise DateOutOfBounds,
# so the calendar is always built from an early start.
CALENDAR_START = "1990-01-02"


@lru_cache(maxsize=1)
def xnys() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("XNYS", start=CALENDAR_START)


def _as_date(value: dt.date | str) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def sessions(start: dt.date | str, end: dt.date | str) -> list[dt.date]:
    """The XNYS sessions from start to end, both included (either may be a non-session day)."""
    start, end = _as_date(start), _as_date(end)
    if end < start:
        return []
    cal = xnys()
    first, last = cal.first_session.date(), cal.last_session.date()
    start, end = max(start, first), min(end, last)
    if end < start:
        return []
    return [ts.date() for ts in cal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))]


def first_day() -> dt.date:
    return xnys().first_session.date()


def last_day() -> dt.date:
    return xnys().last_session.date()


def in_range(day: dt.date | str) -> bool:
    """Whether the calendar can say anything about ``day`` (exchange-calendars raises outside its range)."""
    return first_day() <= _as_date(day) <= last_day()


def is_session(day: dt.date | str) -> bool:
    return xnys().is_session(pd.Timestamp(_as_date(day)))


def previous_session(day: dt.date | str) -> dt.date:
    """The last session strictly before `day`."""
    return xnys().date_to_session(pd.Timestamp(_as_date(day)) - pd.Timedelta(days=1), direction="previous").date()


def next_session(day: dt.date | str) -> dt.date:
    """The first session strictly after `day`."""
    return xnys().date_to_session(pd.Timestamp(_as_date(day)) + pd.Timedelta(days=1), direction="next").date()


def holidays(start: dt.date | str, end: dt.date | str) -> list[dt.date]:
    """Weekdays between start and end (both included) on which XNYS does not trade."""
    start, end = _as_date(start), _as_date(end)
    trading = set(sessions(start, end))
    days = pd.bdate_range(start, end)
    return [d.date() for d in days if d.date() not in trading]


def session_close(day: dt.date | str) -> dt.datetime:
    """The UTC close time of a session (early closes included)."""
    return xnys().session_close(pd.Timestamp(_as_date(day))).to_pydatetime()


def last_closed_session(now: dt.datetime | None = None) -> dt.date:
    """The newest session whose close has passed at `now` (UTC; default: the current time)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    day = now.date()
    if is_session(day) and session_close(day) <= now:
        return day
    return previous_session(day)


# ---------------------------------------------------------------------------------------------- deadlines
NEW_YORK = ZoneInfo("America/New_York")
DEADLINE = dt.time(19, 30)  # New York time on the session's date


def deadline(session: dt.date) -> dt.datetime:
    return dt.datetime.combine(session, DEADLINE, tzinfo=NEW_YORK)


def due_session(now: dt.datetime) -> dt.date:
    """The newest session whose deadline has passed at `now` (an aware datetime)."""
    day = now.astimezone(NEW_YORK).date()
    if is_session(day) and deadline(day) <= now:
        return day
    return previous_session(day)


def verdict(due: dt.date, materialized: set[str], asset: str) -> tuple[bool, str]:
    """(passed, one sentence) given the partition keys materialized so far."""
    if due.isoformat() in materialized:
        return True, f"{asset} is fresh: session {due} (due {DEADLINE:%H:%M} New York time) is materialized."
    newest = max(materialized) if materialized else "none"
    return False, (f"{asset} is overdue: session {due} was due by {DEADLINE:%H:%M} New York time and is not "
                   f"materialized (newest: {newest}); start the daily schedule or materialize that partition.")
