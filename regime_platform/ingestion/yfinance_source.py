"""Yahoo Finance through yfinance, one ticker or a whole list in one `download` call."""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import polars as pl

from regime_platform.ingestion.source_base import (
    OHLCV_COLUMNS,
    Answers,
    SourceError,
    TransientSourceError,
    each,
    keep_closed_sessions,
    normalize,
)

# What yfinance's own error lines say when asking again later may help, and how we say it.
TRANSIENT_MARKS = [
    (("dnserror", "dns lookup", "could not resolve host", "name or service not known"), "the DNS lookup failed: offline?"),
    (("timeout", "timed out"), "no answer in time"),
    (("ratelimit", "rate limit", "too many requests", "429"), "rate-limited by Yahoo"),
    (("connectionerror", "connection refused", "failed to connect", "connection reset"), "no connection"),
    (("500 server error", "502", "503", "504", "internal server error"), "a server error at Yahoo"),
]


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def quiet_yfinance() -> Iterator[list[str]]:
    """yfinance's own log lines (offline: a DNS error per ticker and a "Failed download" banner) are captured, not
    printed, and the pandas deprecation warnings it triggers are ignored (yfinance re-enables DeprecationWarning
    for itself at import, so PYTHONWARNINGS=ignore does not reach them): the platform says what failed once, in its
    own sentence. Yields the captured lines."""
    logger, capture = logging.getLogger("yfinance"), _Lines()
    propagate = logger.propagate
    logger.addHandler(capture)
    logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield capture.lines
    finally:
        logger.removeHandler(capture)
        logger.propagate = propagate


def failure(ticker: str, span: str, said: Sequence[str]) -> SourceError:
    """One sentence for a ticker yfinance did not serve, transient when its own lines say so."""
    mine = " ".join(line for line in said if f"'{ticker.upper()}'" in line or "['" not in line).lower()
    for marks, reason in TRANSIENT_MARKS:
        if any(mark in mine for mark in marks):
            return TransientSourceError(f"yfinance could not reach Yahoo Finance for {ticker} ({reason}); check the "
                                        "network or try again later.")
    return SourceError(f"yfinance returned no rows for {ticker} ({span}): an unknown or delisted ticker, or no "
                       "sessions in that span; check REGIME_TICKERS or set REGIME_SOURCE to another source.")


@dataclass
class YFinanceSource:
    """Yahoo Finance through yfinance. Offline or rate-limited it returns an empty frame: that is a failure.

    A list of tickers is one `download(list, group_by="ticker", multi_level_index=True)` call (yfinance fetches
    the tickers on its own threads). yfinance 1.7.0 answers with MultiIndex columns (Ticker, Price) whatever
    `multi_level_index` says when it is given several tickers, upper-cases and de-duplicates the tickers, and
    gives a ticker it could not fetch all-NaN columns on the other tickers' dates (all tickers failing: an empty
    frame). Each ticker's columns are split off and validated alone, so one bad ticker fails alone.
    """

    download: Callable | None = None  # yfinance.download; injectable for tests
    name: str = "yfinance"

    def _call(self, tickers: str | list[str], **kwargs) -> tuple[object, list[str]]:
        """yfinance's answer and its own log lines (quieted); raises what yfinance raises."""
        download = self.download
        if download is None:
            with quiet_yfinance():  # its import sets a warnings filter
                import yfinance

            download = yfinance.download
        shape = ({"group_by": "ticker", "multi_level_index": True, "threads": True} if isinstance(tickers, list)
                 else {"multi_level_index": False, "threads": False})
        with quiet_yfinance() as said:
            try:
                return download(tickers, auto_adjust=False, actions=True, progress=False, **shape, **kwargs), said
            except Exception as exc:  # yfinance raises many types; all mean "no data from here"
                said.append(f"{type(exc).__name__}: {exc}")
                return None, said

    def _download(self, ticker: str, span: str, **kwargs):
        raw, said = self._call(ticker, **kwargs)
        if raw is None or raw.empty:
            raise failure(ticker, span, said)
        return raw

    def fetch(self, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        span = f"{start}…{end}"
        return self._to_frame(self._download(ticker, span, **self._window(start, end)), ticker, span)

    def fetch_many(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> Answers:
        """One download for the whole list (one ticker: the same request as `fetch`)."""
        return self._many(tickers, f"{start}…{end}", **self._window(start, end))

    def last_session(self, ticker: str) -> dt.date:
        raw = self._download(ticker, "the last 10 days", period="10d")
        return self._newest(self._to_frame(raw, ticker, "the last 10 days"), ticker)

    def last_sessions(self, tickers: Sequence[str]) -> dict[str, dt.date | SourceError]:
        """One `download(list, period="10d")` for the whole list."""
        frames = self._many(tickers, "the last 10 days", period="10d")
        return each(frames, lambda t: self._newest(frames[t], t))

    @staticmethod
    def _window(start: dt.date, end: dt.date) -> dict:
        return {"start": start.isoformat(), "end": (end + dt.timedelta(days=1)).isoformat()}  # end is exclusive

    @staticmethod
    def _newest(frame: pl.DataFrame | SourceError, ticker: str) -> dt.date:
        if isinstance(frame, SourceError):
            raise frame
        frame = keep_closed_sessions(frame, dt.date(1990, 1, 2), dt.date.max)
        if frame.is_empty():
            raise SourceError(f"yfinance has no closed session for {ticker} in the last 10 days.")
        return frame["date"].max()

    def _many(self, tickers: Sequence[str], span: str, **kwargs) -> Answers:
        tickers = list(dict.fromkeys(tickers))
        if len(tickers) == 1:
            return each(tickers, lambda t: self._to_frame(self._download(t, span, **kwargs), t, span))
        raw, said = self._call(tickers, **kwargs)  # one download: when it fails, every ticker of it did
        return each(tickers, lambda t: self._to_frame(self._columns_of(raw, t, span, said), t, span))

    def _columns_of(self, raw, ticker: str, span: str, said: Sequence[str]):
        """`ticker`'s own columns of a multi-ticker answer, as the single-ticker answer would have them."""
        if raw is None or raw.empty:
            raise failure(ticker, span, said)
        names = list(raw.columns.names)
        if "Ticker" not in names:
            raise SourceError(f"yfinance answered the list with columns {names} instead of (Ticker, Price), so "
                              f"{ticker}'s bars cannot be told apart; this is a bug, please report it.")
        if ticker.upper() not in raw.columns.get_level_values("Ticker"):
            raise SourceError(f"yfinance's answer has no columns for {ticker} ({span}); check the ticker "
                              "or set REGIME_SOURCE to another source.")
        part = raw.xs(ticker.upper(), axis=1, level="Ticker")
        if part.isna().all().all():  # how yfinance marks a ticker it could not fetch among others it could
            raise failure(ticker, span, said)
        return part

    def _to_frame(self, raw, ticker: str, span: str) -> pl.DataFrame:
        if raw is None or raw.empty:
            raise failure(ticker, span, [])
        raw = raw.reset_index()
        rename = {"Date": "date", "Datetime": "date", "Open": "open", "High": "high", "Low": "low",
                  "Close": "close", "Adj Close": "adj_close", "Volume": "volume"}
        raw = raw.rename(columns=rename)
        if "adj_close" not in raw.columns and "close" in raw.columns:
            raise SourceError("yfinance answered without 'Adj Close' (auto_adjust on?); this is a bug, please report it.")
        raw["date"] = raw["date"].dt.tz_localize(None).dt.date if hasattr(raw["date"], "dt") else raw["date"]
        frame = pl.from_pandas(raw[[c for c in OHLCV_COLUMNS if c in raw.columns]])
        return normalize(frame, f"yfinance {ticker}")
