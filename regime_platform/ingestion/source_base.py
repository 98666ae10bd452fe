"""What every market data source shares: the normalized OHLCV frame, the error, and per-ticker answers.

A source serves a list of tickers as a dict ticker → frame, or ticker → `SourceError` for a ticker it could not
serve: one ticker's failure never hides another's bars. `sources` re-exports these names.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable, Iterable, TypeVar

import polars as pl

from regime_platform import calendar

OHLCV_COLUMNS = ["date", "open", "high", "low", "close", "adj_close", "volume"]

T = TypeVar("T")


class SourceError(RuntimeError):
    """A source could not serve the request; the message says what happened and what to do.

    ``transient`` says whether asking again later may succeed: the ohlcv asset's RetryPolicy retries only those."""

    transient = False


class TransientSourceError(SourceError):
    """A fault that asking again later may cure: a timeout, a refused connection, a failed DNS lookup, a truncated
    answer, HTTP 429 or 5xx. Unknown tickers, missing keys, quota pages and malformed data are permanent."""

    transient = True


# One source's answer for a list of tickers: each requested ticker → its bars, or why it could not be served.
Answers = dict[str, pl.DataFrame | SourceError]


def each(tickers: Iterable[str], ask: Callable[[str], T]) -> dict[str, T | SourceError]:
    """`ask(ticker)` for every distinct ticker, in order; a SourceError stays with the ticker that raised it."""
    out: dict[str, T | SourceError] = {}
    for ticker in dict.fromkeys(tickers):
        try:
            out[ticker] = ask(ticker)
        except SourceError as exc:
            out[ticker] = exc
    return out


def unwrap(answer: T | SourceError) -> T:
    """The answer itself, or its SourceError raised."""
    if isinstance(answer, SourceError):
        raise answer
    return answer


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
