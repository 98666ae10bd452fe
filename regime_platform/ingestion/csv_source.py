"""The user's own OHLCV file (REGIME_OHLCV_CSV)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from regime_platform import calendar
from regime_platform.ingestion.source_base import SourceError, normalize


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
