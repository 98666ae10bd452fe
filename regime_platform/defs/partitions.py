"""One partition per XNYS trading session from REGIME_START (read when the definitions load)."""
from __future__ import annotations

import datetime as dt

import dagster as dg

from regime_platform import calendar
from regime_platform.settings import Settings

# The exclusions list runs to a year past today so that the newest partition keys stay sessions.
_HOLIDAYS_UNTIL = dt.date.today() + dt.timedelta(days=400)


def session_partitions_def(start: dt.date) -> dg.DailyPartitionsDefinition:
    first = calendar.sessions(start, start + dt.timedelta(days=10))[0]
    holidays = [dt.datetime(d.year, d.month, d.day) for d in calendar.holidays(first, _HOLIDAYS_UNTIL)]
    return dg.DailyPartitionsDefinition(
        start_date=first.isoformat(),
        timezone="America/New_York",
        end_offset=1,
        exclusions=["0 0 * * 6,0", *holidays],
    )


REGIME_START = Settings.start_from_env()
session_partitions = session_partitions_def(REGIME_START)


def daily_asset(**kwargs):
    """``@dg.asset`` for a session-partitioned asset: one partition per XNYS session, a range of thousands of
    sessions in one run, and the ``duckdb`` pool (every such asset reads and writes the warehouse)."""
    return dg.asset(partitions_def=session_partitions, backfill_policy=dg.BackfillPolicy.single_run(), pool="duckdb",
                    **kwargs)


# One partition per ticker below the daily assets (labels, targets, models, evaluation, explainability): dynamic, not
# static, so a ticker is added without reloading the definitions — `regime-platform run` (and the `tickers_sensor`)
# registers every ticker of REGIME_TICKERS, and the UI's partition dialog can add one. A date × ticker grid would
# be 2.5 M partitions at 500 tickers × 5,000 sessions; Dagster advises about 100,000 per asset at most (DESIGN §5).
ticker_partitions = dg.DynamicPartitionsDefinition(name="tickers")


def ticker_asset(**kwargs):
    """``@dg.asset`` for a per-ticker asset: one partition per ticker (the key is the ticker) and the ``duckdb`` pool."""
    return dg.asset(partitions_def=ticker_partitions, pool="duckdb", **kwargs)


def ticker_check(**kwargs):
    """``@dg.asset_check`` of a per-ticker asset: evaluated for the ticker partition that was materialized."""
    return dg.asset_check(partitions_def=ticker_partitions, pool="duckdb", **kwargs)
