"""What every market data source shares: the normalized OHLCV frame and the error. `sources` re-exports them."""
from __future__ import annotations

import datetime as dt

import polars as pl

from regime_platform import calendar

OHLCV_COLUMNS = ["date", "open", "high", "low", "close", "adj_close", "volume"]


class SourceError(RuntimeError):
    """A source could not serve the request; the message says what happened and what to do."""


def normalize(frame: pl.DataFrame, origin: str) -> pl.DataFrame:
    """Cast, sort and validate a frame with OHLCV_COLUMNS; `origin` names the data in errors."""
    missing = [c for c in OHLCV_COLUMNS if c not in frame.columns]
    if missing:
        raise SourceError(f"{origin}: columns {missing} are missing; expected {OHLCV_COLUMNS}.")
    out = (
        frame.select(
            pl.col("date").cast(pl.Date),
            *[pl.col(c).cast(pl.Float64, strict=False) for c in OHLCV_COLUMNS[1:]],
        )
        .filter(pl.col("close").is_not_null() | pl.col("open").is_not_null())
        .sort("date")
    )
    if out.is_empty():
        raise SourceError(f"{origin}: no rows with prices.")
    dupes = out.filter(pl.col("date").is_duplicated())["date"].unique().sort()
    if len(dupes):
        raise SourceError(f"{origin}: date {dupes[0]} appears more than once; fix the data or re-download it.")
    nulls = out.filter(pl.any_horizontal(pl.col(OHLCV_COLUMNS[1:]).is_null()))
    if len(nulls):
        raise SourceError(f"{origin}: the bar of {nulls['date'][0]} has an empty or non-numeric field.")
    bad = out.filter(pl.min_horizontal("open", "high", "low", "close", "adj_close") <= 0)
    if len(bad):
        raise SourceError(f"{origin}: the bar of {bad['date'][0]} has a non-positive price.")
    return out


def keep_closed_sessions(frame: pl.DataFrame, start: dt.date, end: dt.date,
                         now: dt.datetime | None = None) -> pl.DataFrame:
    """Rows of XNYS sessions within start…end whose close has passed: never a partial bar."""
    last = min(end, calendar.last_closed_session(now))
    wanted = pl.Series("date", calendar.sessions(start, last), dtype=pl.Date)
    return frame.filter(pl.col("date").is_in(wanted.implode()))
