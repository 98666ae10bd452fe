"""The cash rate a flat position earns in the backtest, from the stored macro series, point in time.

Which series: the first of ``CASH_SERIES`` stored in market.macro — FRED's 3-month T-bill ``DTB3`` (percent a year),
the Fama–French daily risk-free rate ``FF_RF_D`` (percent a day), or offline the Fama–French monthly ``RF`` that
`arch` bundles (``FF_RF``, percent a month). The daily rate is the compounded share of the period:
(1 + v/100) ** (periods a year / 252) − 1 (a discount-basis quote read as a yield: a stated approximation).

Point in time: the return of session d (close d−1 → close d) earns the rate known when the position was taken — the
newest value with ``usable_from`` ≤ d−1 — and nothing once that value is older than ``STALE_SESSIONS`` of its
frequency (then 0 %, counted in the note). No stored cash series: 0 % every day, and the note says so. No Dagster.
"""
from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from regime_platform.calendar import SESSIONS_PER_YEAR

CASH_SERIES = {"DTB3": 1, "FF_RF_D": SESSIONS_PER_YEAR, "FF_RF": 12}  # series → periods a year of one value
STALE_SESSIONS = {1: 10, SESSIONS_PER_YEAR: 10, 12: 63}  # a monthly value serves until about 3 months old


@dataclass(frozen=True)
class CashRate:
    """The cash return of each session of ``dates`` (earned over close d−1 → close d), the series and how fresh."""

    dates: list[dt.date]
    daily: np.ndarray
    series: str | None
    fresh: np.ndarray  # whether the session had a fresh value (False: 0 % earned)

    def sentence(self, start: dt.date, end: dt.date) -> str:
        """What a page says about the cash rate over start … end."""
        if self.series is None:
            return ("a flat position earns 0 %: market.macro stores no cash rate (DTB3, FF_RF_D or FF_RF); "
                    "materialize macro to earn one, and Sharpe is then on returns in excess of it.")
        span = np.array([start <= d <= end for d in self.dates], dtype=bool)
        n, missing = int(span.sum()), int((span & ~self.fresh).sum())
        periods = CASH_SERIES[self.series]
        unit = {1: "percent a year", SESSIONS_PER_YEAR: "percent a day", 12: "percent a month"}[periods]
        yearly = np.prod(1.0 + self.daily[span]) ** (SESSIONS_PER_YEAR / max(n, 1)) - 1.0
        return (f"a flat position earns the cash rate {self.series} ({unit}, compounded to a session: (1 + v/100)^"
                f"({periods}/252) − 1), the value usable at the close the position was taken"
                + (f"; {missing} of {n} sessions had no fresh value and earn 0 %" if missing else "")
                + f"; {yearly:.2%} a year over {start} … {end}; Sharpe is on returns in excess of it.")


def daily_rate(value: np.ndarray, periods_per_year: int) -> np.ndarray:
    """Percent per period → the compounded return of one session."""
    return (1.0 + np.asarray(value, dtype=float) / 100.0) ** (periods_per_year / SESSIONS_PER_YEAR) - 1.0


def cash_returns(macro: pl.DataFrame, price_dates: list[dt.date]) -> CashRate:
    """The cash return of each session of ``price_dates`` from market.macro rows (series, date, value, usable_from):
    session d earns the newest value usable at the close of d−1 (the first session earns nothing)."""
    n = len(price_dates)
    stored = set(macro["series"].unique().to_list()) if macro.height else set()
    series = next((s for s in CASH_SERIES if s in stored), None)
    if series is None or n == 0:
        return CashRate(list(price_dates), np.zeros(n), None, np.zeros(n, dtype=bool))
    periods = CASH_SERIES[series]
    rows = (macro.filter(pl.col("series") == series).sort("usable_from", "date")
            .unique("usable_from", keep="last", maintain_order=True).select("usable_from", "value"))
    decided = pl.DataFrame({"i": range(1, n), "decided": price_dates[:-1]}, schema={"i": pl.Int64, "decided": pl.Date})
    known = decided.join_asof(rows, left_on="decided", right_on="usable_from", strategy="backward")
    fresh = np.zeros(n, dtype=bool)
    rate = np.zeros(n)
    for i, u, v in zip(known["i"].to_list(), known["usable_from"].to_list(), known["value"].to_list()):
        if u is not None and (i - 1) - bisect.bisect_left(price_dates, u) <= STALE_SESSIONS[periods]:
            fresh[i], rate[i] = True, float(daily_rate(np.array([v]), periods)[0])
    return CashRate(list(price_dates), rate, series, fresh)


__all__ = ["CASH_SERIES", "STALE_SESSIONS", "CashRate", "cash_returns", "daily_rate"]
