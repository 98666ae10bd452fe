"""One partition per XNYS trading session from REGIME_START (read when the definitions load)."""
from __future__ import annotations

import datetime as dt

import dagster as dg

from regime_platform import calendar
from regime_platform.settings import Settings

# The exclusions list runs to a year past today so that the newest partition keys stay sessions.
_HORIZON = dt.date.today() + dt.timedelta(days=400)


def session_partitions_def(start: dt.date) -> dg.DailyPartitionsDefinition:
    first = calendar.sessions(start, start + dt.timedelta(days=10))[0]
    holidays = [dt.datetime(d.year, d.month, d.day) for d in calendar.holidays(first, _HORIZON)]
    return dg.DailyPartitionsDefinition(
        start_date=first.isoformat(),
        timezone="America/New_York",
        end_offset=1,
        exclusions=["0 0 * * 6,0", *holidays],
    )


REGIME_START = Settings.from_env().start
session_partitions = session_partitions_def(REGIME_START)
