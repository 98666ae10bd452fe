"""Yahoo Finance through yfinance."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

import polars as pl

from regime_platform.ingestion.source_base import OHLCV_COLUMNS, SourceError, keep_closed_sessions, normalize


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
