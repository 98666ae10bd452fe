"""Market data sources behind one interface.

Every source returns the same normalized daily OHLCV frame — date, open, high, low, close, adj_close,
volume — for the XNYS sessions it can serve, or raises `SourceError` saying what went wrong and what to do.
`SourceChain` tries sources in order (auto = yfinance → Stooq → bundled sample) and reports each fallback.
"""
from __future__ import annotations

import datetime as dt
import importlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import polars as pl

from regime_platform import calendar

log = logging.getLogger(__name__)

OHLCV_COLUMNS = ["date", "open", "high", "low", "close", "adj_close", "volume"]
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


class SourceError(RuntimeError):
    """A source could not serve the request; the message says what happened and what to do."""


class OhlcvSource(Protocol):
    name: str

    def fetch(self, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Bars for sessions start…end (both included) that the source has; raises SourceError."""

    def last_session(self, ticker: str) -> dt.date:
        """The newest closed session the source can serve for `ticker`; raises SourceError."""


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


# --------------------------------------------------------------------------------------------- yfinance
@dataclass
class YFinanceSource:
    """Yahoo Finance through yfinance. Offline or rate-limited it returns an empty frame: that is a failure."""

    download: Callable | None = None  # yfinance.download; injectable for tests
    name: str = "yfinance"

    def _download(self, ticker: str, **kwargs):
        download = self.download
        if download is None:
            import yfinance

            download = yfinance.download
        try:
            return download(ticker, auto_adjust=False, actions=True, multi_level_index=False,
                            progress=False, threads=False, **kwargs)
        except Exception as exc:  # yfinance raises many types; all mean "no data from here"
            raise SourceError(f"yfinance failed for {ticker}: {exc}") from exc

    def fetch(self, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        raw = self._download(ticker, start=start.isoformat(), end=(end + dt.timedelta(days=1)).isoformat())
        return self._to_frame(raw, ticker, f"{start}…{end}")

    def last_session(self, ticker: str) -> dt.date:
        raw = self._download(ticker, period="10d")
        frame = keep_closed_sessions(self._to_frame(raw, ticker, "the last 10 days"),
                                     dt.date(1990, 1, 2), dt.date.max)
        if frame.is_empty():
            raise SourceError(f"yfinance has no closed session for {ticker} in the last 10 days.")
        return frame["date"].max()

    def _to_frame(self, raw, ticker: str, span: str) -> pl.DataFrame:
        if raw is None or raw.empty:
            raise SourceError(
                f"yfinance returned no rows for {ticker} ({span}): offline, rate-limited or an unknown ticker; "
                "check the network or set REGIME_SOURCE to another source."
            )
        raw = raw.reset_index()
        rename = {"Date": "date", "Datetime": "date", "Open": "open", "High": "high", "Low": "low",
                  "Close": "close", "Adj Close": "adj_close", "Volume": "volume"}
        raw = raw.rename(columns=rename)
        if "adj_close" not in raw.columns and "close" in raw.columns:
            raise SourceError("yfinance answered without 'Adj Close' (auto_adjust on?); this is a bug, please report it.")
        raw["date"] = raw["date"].dt.tz_localize(None).dt.date if hasattr(raw["date"], "dt") else raw["date"]
        frame = pl.from_pandas(raw[[c for c in OHLCV_COLUMNS if c in raw.columns]])
        return normalize(frame, f"yfinance {ticker}")


# --------------------------------------------------------------------------------------------- Stooq
STOOQ_KEY_HELP = ("Stooq needs a free API key since 2026: get one at stooq.com (account settings) "
                  "and set STOOQ_API_KEY in the environment or in .env.")


@dataclass
class StooqSource:
    """Stooq's daily CSV over HTTP (Date, Open, High, Low, Close, Volume; its Close is already adjusted)."""

    api_key: str | None
    base_url: str = "https://stooq.com/q/d/l/"
    timeout: float = 20.0
    name: str = "stooq"

    @staticmethod
    def symbol(ticker: str) -> str:
        ticker = ticker.lower()
        return ticker if "." in ticker or ticker.startswith("^") else f"{ticker}.us"

    def fetch(self, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        if not self.api_key:
            raise SourceError(f"Stooq skipped: STOOQ_API_KEY is not set. {STOOQ_KEY_HELP}")
        import requests

        params = {"s": self.symbol(ticker), "i": "d", "d1": start.strftime("%Y%m%d"),
                  "d2": end.strftime("%Y%m%d"), "apikey": self.api_key}
        try:
            resp = requests.get(self.base_url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SourceError(f"Stooq could not be reached ({type(exc).__name__}): check the network.") from exc
        return self.parse(resp.status_code, resp.text, ticker)

    def last_session(self, ticker: str) -> dt.date:
        today = dt.date.today()
        frame = keep_closed_sessions(self.fetch(ticker, today - dt.timedelta(days=14), today),
                                     dt.date(1990, 1, 2), dt.date.max)
        if frame.is_empty():
            raise SourceError(f"Stooq has no closed session for {ticker} in the last 14 days.")
        return frame["date"].max()

    def parse(self, status: int, body: str, ticker: str) -> pl.DataFrame:
        text = body.lstrip("\ufeff").strip()
        lowered = text[:2000].lower()
        if status != 200:
            raise SourceError(f"Stooq answered HTTP {status} for {ticker}; try again later or use another source.")
        if "daily hits limit" in lowered or "exceeded the daily" in lowered:
            raise SourceError("Stooq refused: the API key's daily hits limit is exceeded; wait until tomorrow "
                              "or set REGIME_SOURCE to another source.")
        if lowered.startswith("<") or "<html" in lowered or "<!doctype" in lowered:
            raise SourceError(f"Stooq answered with an HTML page instead of CSV (missing or invalid API key). "
                              f"{STOOQ_KEY_HELP}")
        if not text or lowered.startswith("no data"):
            raise SourceError(f"Stooq has no data for {self.symbol(ticker)}: check REGIME_TICKER.")
        try:
            raw = pl.read_csv(io.StringIO(text), infer_schema_length=0)
        except Exception as exc:
            raise SourceError(f"Stooq's answer is not a readable CSV ({exc}).") from exc
        cols = {c.strip().lower(): c for c in raw.columns}
        need = ["date", "open", "high", "low", "close", "volume"]
        if [c for c in need if c not in cols]:
            raise SourceError(f"Stooq's CSV has columns {raw.columns}, expected Date, Open, High, Low, Close, Volume.")
        frame = raw.select(
            pl.col(cols["date"]).str.strptime(pl.Date, "%Y-%m-%d", strict=False).alias("date"),
            *[pl.col(cols[c]).alias(c) for c in need[1:]],
        ).with_columns(pl.col("close").alias("adj_close"))
        if frame["date"].null_count():
            raise SourceError("Stooq's CSV has a Date that is not YYYY-MM-DD.")
        return normalize(frame, f"Stooq {ticker}")


# --------------------------------------------------------------------------------------------- user CSV
@dataclass
class CsvSource:
    """A user's own OHLCV file: Date, Open, High, Low, Close, Volume and optionally Adj Close (any case)."""

    path: Path | None
    name: str = "csv"

    def _read(self) -> pl.DataFrame:
        if self.path is None:
            raise SourceError("REGIME_SOURCE=csv needs REGIME_OHLCV_CSV set to the path of your OHLCV file.")
        if not self.path.is_file():
            raise SourceError(f"REGIME_OHLCV_CSV={self.path} does not exist; point it at your OHLCV CSV file.")
        try:
            raw = pl.read_csv(self.path, infer_schema_length=0)
        except Exception as exc:
            raise SourceError(f"{self.path} is not a readable CSV file ({exc}).") from exc
        cols = {c.strip().lower().replace("_", " "): c for c in raw.columns}
        need = ["date", "open", "high", "low", "close", "volume"]
        missing = [c.title() for c in need if c not in cols]
        if missing:
            raise SourceError(f"{self.path}: columns {missing} are missing; the header needs Date, Open, High, "
                              "Low, Close, Volume and optionally Adj Close.")
        adj = cols.get("adj close", cols["close"])
        frame = raw.select(
            pl.col(cols["date"]).str.strip_chars().str.strptime(pl.Date, "%Y-%m-%d", strict=False).alias("date"),
            *[pl.col(cols[c]).alias(c) for c in need[1:]],
            pl.col(adj).alias("adj_close"),
        )
        bad = frame.with_row_index("line", offset=2).filter(pl.col("date").is_null())
        if len(bad):
            raise SourceError(f"{self.path}, line {bad['line'][0]}: Date is not YYYY-MM-DD.")
        frame = normalize(frame, str(self.path))
        off = [d for d in frame["date"].to_list() if not calendar.is_session(d)]
        if off:
            raise SourceError(f"{self.path}: {off[0]} is not an XNYS trading session; remove that row.")
        return frame

    def fetch(self, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        frame = self._read().filter(pl.col("date").is_between(start, end))
        if frame.is_empty():
            raise SourceError(f"{self.path} has no rows between {start} and {end}.")
        return frame

    def last_session(self, ticker: str) -> dt.date:
        return self._read()["date"].max()


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


@dataclass
class SourceChain:
    """Try each source in order; every fallback is a warning the caller logs and shows."""

    sources: list

    def fetch(self, ticker: str, start: dt.date, end: dt.date, now: dt.datetime | None = None) -> Fetched:
        warnings: list[str] = []
        for source in self.sources:
            try:
                frame = keep_closed_sessions(source.fetch(ticker, start, end), start, end, now)
                if frame.is_empty():
                    raise SourceError(f"{source.name} has no closed session between {start} and {end}.")
                return Fetched(frame, served_as(source, ticker), warnings)
            except SourceError as exc:
                warnings.append(f"{source.name} failed: {exc}")
                log.warning("%s failed: %s", source.name, exc)
        raise SourceError("no source could serve " f"{ticker} {start}…{end}: " + " | ".join(warnings))

    def last_session(self, ticker: str) -> tuple[str, dt.date, list[str]]:
        """(serving source, newest closed session it serves, warnings of the sources that failed)."""
        warnings: list[str] = []
        for source in self.sources:
            try:
                last = source.last_session(ticker)
                return served_as(source, ticker), last, warnings
            except SourceError as exc:
                warnings.append(f"{source.name} failed: {exc}")
                log.warning("%s failed: %s", source.name, exc)
        raise SourceError(f"no source can serve {ticker}: " + " | ".join(warnings))


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
