"""When a session's daily outputs are due: XNYS-aware, so a holiday or a weekend is never overdue.

Plain Python (no Dagster). The daily schedule runs at 18:00 New York time; a session's partition is due by
19:30 New York time on that session's date (early closes included: the run still starts at 18:00).
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from regime_platform import calendar

NEW_YORK = ZoneInfo("America/New_York")
DEADLINE = dt.time(19, 30)  # New York time on the session's date


def deadline(session: dt.date) -> dt.datetime:
    return dt.datetime.combine(session, DEADLINE, tzinfo=NEW_YORK)


def due_session(now: dt.datetime) -> dt.date:
    """The newest session whose deadline has passed at `now` (an aware datetime)."""
    day = now.astimezone(NEW_YORK).date()
    if calendar.is_session(day) and deadline(day) <= now:
        return day
    return calendar.previous_session(day)


def verdict(due: dt.date, materialized: set[str], asset: str) -> tuple[bool, str]:
    """(passed, one sentence) given the partition keys materialized so far."""
    if due.isoformat() in materialized:
        return True, f"{asset} is fresh: session {due} (due {DEADLINE:%H:%M} New York time) is materialized."
    newest = max(materialized) if materialized else "none"
    return False, (f"{asset} is overdue: session {due} was due by {DEADLINE:%H:%M} New York time and is not "
                   f"materialized (newest: {newest}); start the daily schedule or materialize that partition.")
