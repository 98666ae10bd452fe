"""Market data sources behind one interface.

Every source returns the same normalized daily OHLCV frame — date, open, high, low, close, adj_close,
volume — for the XNYS sessions it can serve, or raises `SourceError` saying what went wrong and what to do.
`SourceChain` tries sources in order (auto = yfinance → Stooq → bundled sample) and reports each fallback;
`fetch_many` / `last_sessions` serve a list of tickers, each ticker falling back (or failing) on its own.

The sources live one per module (`yfinance_source`, `stooq_source`, `csv_source`; what they share in
`source_base`) and are re-exported here, so `from regime_platform.ingestion.sources import …` is the one import.
"""
from __future__ import annotations

import datetime as dt
import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import polars as pl

from regime_platform.ingestion.csv_source import CsvSource
from regime_platform.ingestion.source_base import (
    OHLCV_COLUMNS,
    Answers,
    SourceError,
    TransientSourceError,
    each,
    keep_closed_sessions,
    normalize,
    unwrap,
)
from regime_platform.ingestion.stooq_source import STOOQ_KEY_HELP, StooqSource
from regime_platform.ingestion.yfinance_source import YFinanceSource

__all__ = [
    "OHLCV_COLUMNS", "SAMPLE_FIRST", "SAMPLE_LAST", "SAMPLE_SERIES", "STOOQ_KEY_HELP", "Answers", "CsvSource",
    "Fetched", "OhlcvSource", "SampleSeries", "SampleSource", "SourceChain", "SourceError", "StooqSource",
    "TransientSourceError", "YFinanceSource", "build_chain", "each", "is_sample", "keep_closed_sessions", "normalize", "sample_series",
    "sample_stand_in", "served_as", "unwrap",
]

log = logging.getLogger(__name__)

SAMPLE_FIRST = dt.date(1999, 1, 4)
SAMPLE_LAST = dt.date(2018, 12, 31)


@dataclass(frozen=True)
class SampleSeries:
    """One real series bundled in the `arch` package, and what it is in words."""

    symbol: str  # the index's own ticker, e.g. "^GSPC"
    title: str  # e.g. "the S&P 500 index"
    dataset: str  # the `arch.data` module that ships it

    @property
    def source(self) -> str:
        """What rows served from it store in `source`: the truth, since they keep the requested ticker."""
        return f"sample:{self.symbol}"


# The one declaration of what the bundled sample serves: requested ticker → the real series standing in for it.
# Every sentence about the sample (errors, warnings, the CLI) is derived from this dict.
SAMPLE_SERIES: dict[str, SampleSeries] = {
    "SPY": SampleSeries("^GSPC", "the S&P 500 index", "sp500"),
    "QQQ": SampleSeries("^IXIC", "the Nasdaq Composite index", "nasdaq"),
}


class OhlcvSource(Protocol):
    """A source. It may also have `fetch_many(tickers, start, end)` and `last_sessions(tickers)` (dicts ticker →
    answer or SourceError) to serve a list in fewer requests; the chain asks `fetch` ticker by ticker otherwise."""

    name: str

    def fetch(self, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Bars for sessions start…end (both included) that the source has; raises SourceError."""

    def last_session(self, ticker: str) -> dt.date:
        """The newest closed session the source can serve for `ticker`; raises SourceError."""


# --------------------------------------------------------------------------------------------- sample
def _words(items: list[str], last: str = "and") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def is_sample(source: str) -> bool:
    """Whether a serving source (a row's `source`) is the bundled sample, whichever series."""
    return source.startswith("sample:")


def sample_series(ticker: str) -> SampleSeries:
    """The bundled series standing in for `ticker`; for any other ticker a SourceError saying what to do."""
    series = SAMPLE_SERIES.get(ticker.upper())
    if series is None:
        offer = _words([f"{t} ({s.title}, {s.symbol})" for t, s in SAMPLE_SERIES.items()])
        raise SourceError(
            f"the bundled offline sample has no {ticker}: it serves only stand-ins for {offer}, "
            f"{SAMPLE_FIRST} … {SAMPLE_LAST}; go online, set REGIME_SOURCE=csv with REGIME_OHLCV_CSV pointing at "
            f"your own {ticker} file, or use {_words(list(SAMPLE_SERIES), 'or')}.")
    return series


def sample_stand_in(ticker: str) -> str:
    """E.g. "the Nasdaq Composite index (^IXIC, 1999-01-04 … 2018-12-31) stands in for QQQ"."""
    series = sample_series(ticker)
    return f"{series.title} ({series.symbol}, {SAMPLE_FIRST} … {SAMPLE_LAST}) stands in for {ticker}"


@dataclass
class SampleSource:
    """Bundled offline data: real index OHLCV 1999-01-04…2018-12-31 from the `arch` package, one series per
    ticker it stands in for (SAMPLE_SERIES).

    Rows keep the requested ticker so the platform works with no network, and carry the truth in `source`
    (`origin`, e.g. "sample:^GSPC" for SPY). Any other ticker is a SourceError saying what to do.
    An index pays no dividends: its Adj Close equals Close.
    """

    name: str = "sample"

    def origin(self, ticker: str) -> str:
        return sample_series(ticker).source

    def fetch(self, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        series = sample_series(ticker)
        raw = importlib.import_module(f"arch.data.{series.dataset}").load().reset_index()
        frame = pl.from_pandas(raw).select(
            pl.col("Date").cast(pl.Date).alias("date"),
            pl.col("Open").alias("open"), pl.col("High").alias("high"), pl.col("Low").alias("low"),
            pl.col("Close").alias("close"), pl.col("Adj Close").alias("adj_close"),
            pl.col("Volume").alias("volume"),
        ).filter(pl.col("date").is_between(start, end))
        if frame.is_empty():
            raise SourceError(f"the bundled sample covers {SAMPLE_FIRST}…{SAMPLE_LAST} only; "
                              f"nothing between {start} and {end}.")
        return normalize(frame, f"the bundled sample ({series.symbol})")

    def last_session(self, ticker: str) -> dt.date:
        sample_series(ticker)  # an unknown ticker says so here, before anything is planned
        return SAMPLE_LAST

    def fetch_many(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> Answers:
        """Each ticker on its own (local data, nothing to batch): SAMPLE_SERIES' tickers served, others refused."""
        return each(tickers, lambda t: self.fetch(t, start, end))

    def last_sessions(self, tickers: Sequence[str]) -> dict[str, dt.date | SourceError]:
        return each(tickers, self.last_session)


# --------------------------------------------------------------------------------------------- chain
def served_as(source, ticker: str) -> str:
    """What rows of `ticker` served by `source` store in `source`: its name, or the sample's true series."""
    origin = getattr(source, "origin", None)
    return origin(ticker) if origin else source.name


@dataclass
class Fetched:
    frame: pl.DataFrame
    source: str
    warnings: list[str] = field(default_factory=list)


def _ask(source, many: str, one: str, tickers: list[str], *args) -> dict:
    """Every ticker's answer from `source`: one `many(tickers, …)` call when it serves lists, else `one(ticker, …)`
    per ticker; a SourceError stays with its ticker."""
    if not hasattr(source, many):
        return each(tickers, lambda t: getattr(source, one)(t, *args))
    try:
        answers = getattr(source, many)(tickers, *args)
    except SourceError as exc:  # the source failed as a whole: it failed for each ticker
        answers = {t: exc for t in tickers}
    return {t: answers[t] if t in answers else
            SourceError(f"{source.name} gave no answer for {t}; this is a bug, please report it.") for t in tickers}


def unserved(transient: bool, sentence: str) -> SourceError:
    """A ticker no source served: transient when one of the sources failed transiently."""
    return (TransientSourceError if transient else SourceError)(sentence)


@dataclass
class SourceChain:
    """Try each source in order; every fallback is a warning the caller logs and shows. For a list of tickers each
    source is asked once for the tickers still unserved, so each ticker falls back (or fails) on its own."""

    sources: list

    def _in_turn(self, tickers: Sequence[str], many: str, one: str, args: tuple,
                 take: Callable) -> tuple[dict[str, tuple], dict[str, list[str]], set[str]]:
        """(ticker → (served_as, take(...)) for the tickers served; ticker → warnings of the sources that failed;
        the tickers some source failed for transiently, which a retry later may serve).
        The warnings are the callers' to say (the asset's log, the CLI): here they are logged at DEBUG only, so
        that each failure is said once."""
        warnings: dict[str, list[str]] = {t: [] for t in dict.fromkeys(tickers)}
        served: dict[str, tuple] = {}
        transient: set[str] = set()
        for source in self.sources:
            pending = [t for t in warnings if t not in served]
            if not pending:
                break
            answers = _ask(source, many, one, pending, *args)
            for ticker in pending:
                try:
                    value = take(source, ticker, unwrap(answers[ticker]))
                    served[ticker] = (served_as(source, ticker), value)
                except SourceError as exc:
                    warnings[ticker].append(f"{source.name} failed: {exc}")
                    if exc.transient:
                        transient.add(ticker)
                    log.debug("%s failed for %s: %s", source.name, ticker, exc)
        return served, warnings, transient

    def fetch_many(self, tickers: Sequence[str], start: dt.date, end: dt.date,
                   now: dt.datetime | None = None) -> dict[str, Fetched | SourceError]:
        """Every requested ticker → its closed sessions start…end from the first source that serves it (`Fetched`),
        or a SourceError naming the ticker and what each source said."""
        def closed(source, ticker: str, frame: pl.DataFrame) -> pl.DataFrame:
            frame = keep_closed_sessions(frame, start, end, now)
            if frame.is_empty():
                raise SourceError(f"{source.name} has no closed session of {ticker} between {start} and {end}.")
            return frame

        served, warnings, transient = self._in_turn(tickers, "fetch_many", "fetch", (start, end), closed)
        return {t: Fetched(served[t][1], served[t][0], said) if t in served else
                unserved(t in transient, f"no source could serve {t} {start}…{end}: " + " | ".join(said))
                for t, said in warnings.items()}

    def fetch(self, ticker: str, start: dt.date, end: dt.date, now: dt.datetime | None = None) -> Fetched:
        return unwrap(self.fetch_many([ticker], start, end, now)[ticker])

    def last_sessions(self, tickers: Sequence[str]) -> dict[str, tuple[str, dt.date, list[str]] | SourceError]:
        """Every requested ticker → (serving source, newest closed session it serves, warnings of the sources that
        failed), or a SourceError naming the ticker and what each source said."""
        served, warnings, transient = self._in_turn(tickers, "last_sessions", "last_session", (),
                                                    lambda s, t, day: day)
        return {t: (*served[t], said) if t in served else
                unserved(t in transient, f"no source can serve {t}: " + " | ".join(said))
                for t, said in warnings.items()}

    def last_session(self, ticker: str) -> tuple[str, dt.date, list[str]]:
        """(serving source, newest closed session it serves, warnings of the sources that failed)."""
        return unwrap(self.last_sessions([ticker])[ticker])


def build_chain(source: str, *, stooq_api_key: str | None = None, ohlcv_csv: Path | None = None,
                yf_download: Callable | None = None, stooq_url: str | None = None) -> SourceChain:
    """The chain for REGIME_SOURCE: auto = yfinance → Stooq → sample; otherwise that one source alone."""
    stooq = StooqSource(stooq_api_key, **({"base_url": stooq_url} if stooq_url else {}))
    by_name = {
        "yfinance": YFinanceSource(yf_download),
        "stooq": stooq,
        "csv": CsvSource(ohlcv_csv),
        "sample": SampleSource(),
    }
    if source == "auto":
        return SourceChain([by_name["yfinance"], stooq, by_name["sample"]])
    if source not in by_name:
        raise SourceError(f"REGIME_SOURCE={source!r} is unknown; use auto, yfinance, stooq, csv or sample.")
    return SourceChain([by_name[source]])
