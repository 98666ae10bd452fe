"""Stooq's daily CSV over HTTP: one symbol per request, so a list of tickers is a loop."""
from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Callable, Sequence

import polars as pl

from regime_platform.ingestion.source_base import (
    Answers,
    SourceError,
    TransientSourceError,
    each,
    keep_closed_sessions,
    normalize,
)

STOOQ_KEY_HELP = ("Stooq needs a free API key since 2026: get one at stooq.com (account settings) "
                  "and set STOOQ_API_KEY in the environment or in .env.")


class StooqDown(SourceError):
    """Stooq itself cannot serve anyone (no or invalid key, daily limit, unreachable): asking again is pointless."""


class StooqUnreachable(StooqDown, TransientSourceError):
    """Stooq could not be reached or did not answer in time: pointless for the other tickers now, worth a retry."""


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
            raise StooqDown(f"Stooq skipped: STOOQ_API_KEY is not set. {STOOQ_KEY_HELP}")
        import requests

        params = {"s": self.symbol(ticker), "i": "d", "d1": start.strftime("%Y%m%d"),
                  "d2": end.strftime("%Y%m%d"), "apikey": self.api_key}
        try:
            resp = requests.get(self.base_url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:  # never quoted: its text carries the URL, and the URL the key
            raise StooqUnreachable(f"Stooq could not be reached ({self._why(exc)}); check the network or try again "
                                   "later.") from None
        return self.parse(resp.status_code, resp.text, ticker)

    def _why(self, exc: Exception) -> str:
        import requests

        if isinstance(exc, requests.Timeout):
            return f"no answer within {self.timeout:g} s"
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return "the answer was cut off"
        if isinstance(exc, requests.ConnectionError):
            return "no connection: the DNS lookup failed or the connection was refused"
        return type(exc).__name__

    def fetch_many(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> Answers:
        """One request per ticker, in order: Stooq's CSV API takes one symbol per request. A ticker's own failure
        stays its own; once Stooq itself fails (no key: before any request; an invalid key, the daily limit,
        no network) the remaining tickers fail with the same reason without being asked."""
        return self._loop(tickers, lambda t: self.fetch(t, start, end))

    def last_session(self, ticker: str) -> dt.date:
        today = dt.date.today()
        frame = keep_closed_sessions(self.fetch(ticker, today - dt.timedelta(days=14), today),
                                     dt.date(1990, 1, 2), dt.date.max)
        if frame.is_empty():
            raise SourceError(f"Stooq has no closed session for {ticker} in the last 14 days.")
        return frame["date"].max()

    def last_sessions(self, tickers: Sequence[str]) -> dict[str, dt.date | SourceError]:
        """`last_session` per ticker, one request each, stopping at the first failure of Stooq itself."""
        return self._loop(tickers, self.last_session)

    @staticmethod
    def _loop(tickers: Sequence[str], ask: Callable[[str], object]) -> dict:
        down: list[StooqDown] = []

        def once(ticker: str):
            if down:
                raise type(down[0])(str(down[0]))  # the same reason, transient or not
            try:
                return ask(ticker)
            except StooqDown as exc:
                down.append(exc)
                raise

        return each(tickers, once)

    def parse(self, status: int, body: str, ticker: str) -> pl.DataFrame:
        text = body.lstrip("\ufeff").strip()
        lowered = text[:2000].lower()
        if status == 429 or status >= 500:  # rate-limited or a server fault: worth asking again later
            raise TransientSourceError(f"Stooq answered HTTP {status} for {ticker}; try again later or use another "
                                       "source.")
        if status != 200:
            raise SourceError(f"Stooq answered HTTP {status} for {ticker}; check REGIME_TICKERS and STOOQ_API_KEY "
                              "or use another source.")
        if "daily hits limit" in lowered or "exceeded the daily" in lowered:
            raise StooqDown("Stooq refused: the API key's daily hits limit is exceeded; wait until tomorrow "
                            "or set REGIME_SOURCE to another source.")
        if lowered.startswith("<") or "<html" in lowered or "<!doctype" in lowered:
            raise StooqDown(f"Stooq answered with an HTML page instead of CSV (missing or invalid API key). "
                            f"{STOOQ_KEY_HELP}")
        if not text or lowered.startswith("no data"):
            raise SourceError(f"Stooq has no data for {self.symbol(ticker)}: check that ticker in REGIME_TICKERS.")
        try:
            raw = pl.read_csv(io.StringIO(text), infer_schema_length=0)
        except Exception as exc:
            raise SourceError(f"Stooq's answer for {ticker} is not a readable CSV ({exc}).") from exc
        cols = {c.strip().lower(): c for c in raw.columns}
        need = ["date", "open", "high", "low", "close", "volume"]
        if [c for c in need if c not in cols]:
            raise SourceError(f"Stooq's CSV for {ticker} has columns {raw.columns}, expected Date, Open, High, Low, "
                              "Close, Volume.")
        frame = raw.select(
            pl.col(cols["date"]).str.strptime(pl.Date, "%Y-%m-%d", strict=False).alias("date"),
            *[pl.col(cols[c]).alias(c) for c in need[1:]],
        ).with_columns(pl.col("close").alias("adj_close"))
        if frame["date"].null_count():
            raise SourceError(f"Stooq's CSV for {ticker} has a Date that is not YYYY-MM-DD.")
        return normalize(frame, f"Stooq {ticker}")
