"""The user's own OHLCV file (REGIME_OHLCV_CSV): one ticker's history, or several tickers' with a Ticker column."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import polars as pl

from regime_platform import calendar
from regime_platform.ingestion.source_base import OHLCV_COLUMNS, Answers, SourceError, each, unwrap

NEED = ["date", "open", "high", "low", "close", "volume"]
NUMBERS = OHLCV_COLUMNS[1:]
PRICES = ["open", "high", "low", "close", "adj_close"]


@dataclass
class CsvSource:
    """A user's own OHLCV file: Date, Open, High, Low, Close, Volume, optionally Adj Close (else Close) and
    Ticker, in any case.

    Without a Ticker column the file is one history and serves whichever single ticker is asked; asked for two
    tickers or more it refuses each. With one, it holds any number of tickers (matched case-insensitively) and a
    ticker it lacks fails alone. Each ticker is validated on its own rows — dates are XNYS sessions in
    YYYY-MM-DD, prices positive and numeric, one row per (ticker, date) — so a bad row fails its ticker alone,
    with its line. Every call reads the file once for its whole list; nothing is kept between calls, so an edit
    of the file counts from the next call. The checks are polars expressions over all rows (no per-row Python).
    """

    path: Path | None
    name: str = "csv"

    def fetch(self, ticker: str, start: dt.date, end: dt.date) -> pl.DataFrame:
        return unwrap(self.fetch_many([ticker], start, end)[ticker])

    def fetch_many(self, tickers: Sequence[str], start: dt.date, end: dt.date) -> Answers:
        histories = self._histories(tickers)
        return each(histories, lambda t: self._window(histories[t], t, start, end))

    def last_session(self, ticker: str) -> dt.date:
        return unwrap(self.last_sessions([ticker])[ticker])

    def last_sessions(self, tickers: Sequence[str]) -> dict[str, dt.date | SourceError]:
        histories = self._histories(tickers)
        return each(histories, lambda t: unwrap(histories[t])["date"].max())

    def _window(self, history: pl.DataFrame | SourceError, ticker: str, start: dt.date, end: dt.date):
        frame = unwrap(history).filter(pl.col("date").is_between(start, end))
        if frame.is_empty():
            raise SourceError(f"{self.path} has no {ticker} rows between {start} and {end}.")
        return frame

    def _histories(self, tickers: Sequence[str]) -> Answers:
        """Each requested ticker's validated bars, all its dates, from one read of the file; or why not."""
        wanted = list(dict.fromkeys(tickers))
        try:
            frame, headers, by_ticker = self._read()
        except SourceError as exc:
            return {t: SourceError(str(exc)) for t in wanted}
        keys = {t: t.strip().upper() for t in wanted}
        if not by_ticker:
            distinct = sorted(set(keys.values()))
            if len(distinct) > 1:
                return {t: SourceError(
                    f"{self.path} has no Ticker column, so it can serve one ticker only, not {t} and "
                    f"{len(distinct) - 1} other ticker{'s' if len(distinct) > 2 else ''} at once; add a Ticker "
                    "column naming each row's ticker, or ask for one ticker.") for t in wanted}
            frame = frame.with_columns(pl.lit(distinct[0]).alias("ticker"))
        asked = frame.filter(pl.col("ticker").is_in(list(set(keys.values()))))
        present = set(asked["ticker"].unique().to_list())
        good, errors = self._validate(asked, headers)
        served = {k[0]: part for k, part in good.partition_by("ticker", as_dict=True, include_key=False,
                                                              maintain_order=True).items()}
        out: Answers = {}
        for ticker, key in keys.items():
            if key in errors:
                out[ticker] = SourceError(errors[key])
            elif key in served:
                out[ticker] = served[key]
            elif key in present or not by_ticker:
                out[ticker] = SourceError(f"{self.path} has no {key} rows with prices; fill in their Open and Close.")
            else:
                others = frame["ticker"].n_unique()
                out[ticker] = SourceError(
                    f"{self.path} has no rows for {key}: its Ticker column names {others} other "
                    f"ticker{'s' if others != 1 else ''}; add {key}'s rows or remove {key} from REGIME_TICKERS.")
        return out

    def _read(self) -> tuple[pl.DataFrame, dict[str, str], bool]:
        """(every row with its line, ticker, date and cast numbers; the file's header per column; has Ticker)."""
        if self.path is None:
            raise SourceError("REGIME_SOURCE=csv needs REGIME_OHLCV_CSV set to the path of your OHLCV file.")
        if not self.path.is_file():
            raise SourceError(f"REGIME_OHLCV_CSV={self.path} does not exist; point it at your OHLCV CSV file.")
        try:
            raw = pl.read_csv(self.path, infer_schema_length=0)
        except Exception as exc:
            raise SourceError(f"{self.path} is not a readable CSV file ({exc}).") from exc
        cols = {c.strip().lower().replace("_", " "): c for c in raw.columns}
        missing = [c.title() for c in NEED if c not in cols]
        if missing:
            raise SourceError(f"{self.path}: columns {missing} are missing; the header needs Date, Open, High, "
                              "Low, Close, Volume and optionally Adj Close and Ticker.")
        headers = {c: cols[c] for c in NEED} | {"adj_close": cols.get("adj close", cols["close"])}
        ticker = cols.get("ticker")
        frame = raw.with_row_index("line", offset=2).select(
            "line",
            (pl.col(ticker).str.strip_chars().str.to_uppercase() if ticker else pl.lit(None, pl.Utf8)).alias("ticker"),
            pl.col(headers["date"]).alias("date_text"),
            pl.col(headers["date"]).str.strip_chars().str.strptime(pl.Date, "%Y-%m-%d", strict=False).alias("date"),
            *[pl.col(headers[c]).cast(pl.Float64, strict=False).alias(c) for c in NUMBERS],
        )
        if ticker:
            blank = frame.filter(pl.col("ticker").is_null() | (pl.col("ticker") == ""))
            if len(blank):
                raise SourceError(f"{self.path}, line {blank['line'][0]}: Ticker is empty; fill in that row's "
                                  "ticker or remove the row.")
        return frame, headers, ticker is not None

    def _validate(self, frame: pl.DataFrame, headers: dict[str, str]) -> tuple[pl.DataFrame, dict[str, str]]:
        """(the rows of the tickers without a problem; ticker → its first problem's sentence, by line)."""
        # a row without Open and Close is no bar (e.g. a holiday exported empty); a bad Date is an error regardless
        frame = frame.filter(pl.col("date").is_null() | pl.col("open").is_not_null() | pl.col("close").is_not_null())
        dates = frame["date"].drop_nulls()
        sessions = pl.Series(calendar.sessions(dates.min(), dates.max()) if len(dates) else [], dtype=pl.Date)
        checked = frame.with_columns(
            pl.col("line").min().over("ticker", "date").alias("first_line"),
            pl.coalesce([pl.when(pl.col(c).is_null()).then(pl.lit(headers[c])) for c in NUMBERS]).alias("field"),
        ).with_columns(
            pl.when(pl.col("date").is_null()).then(pl.lit("date"))
            .when(pl.col("line") != pl.col("first_line")).then(pl.lit("dupe"))
            .when(pl.col("field").is_not_null()).then(pl.lit("empty"))
            .when(pl.min_horizontal(PRICES) <= 0).then(pl.lit("price"))
            .when(~pl.col("date").is_in(sessions.implode())).then(pl.lit("session"))
            .alias("problem")
        )
        bad = checked.filter(pl.col("problem").is_not_null()).unique("ticker", keep="first", maintain_order=True)
        errors = {row["ticker"]: self._sentence(row) for row in bad.iter_rows(named=True)}
        good = (checked.filter(~pl.col("ticker").is_in(list(errors)))
                .select("ticker", *OHLCV_COLUMNS).sort("ticker", "date"))
        return good, errors

    def _sentence(self, row: dict) -> str:
        at, ticker, day = f"{self.path}, line {row['line']}", row["ticker"], row["date"]
        return {
            "date": f"{at}: Date is not YYYY-MM-DD ({row['date_text']!r}); fix that row to serve {ticker}.",
            "dupe": f"{at}: {ticker} {day} appears more than once (first on line {row['first_line']}); keep one "
                    "row per ticker and date.",
            "empty": f"{at}: the {ticker} bar of {day} has an empty or non-numeric {row['field']}; fix that row.",
            "price": f"{at}: the {ticker} bar of {day} has a non-positive price; fix that row.",
            "session": f"{at}: {day} is not an XNYS trading session; remove that row to serve {ticker}.",
        }[row["problem"]]
