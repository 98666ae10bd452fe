"""Named queries of the price tables: ohlcv (and its revisions), features, regime labels."""
from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from regime_platform.storage.db import insert, query, read_scoped, replace_scoped, transaction
from regime_platform.storage.tables import SCHEMA, ensure_schema


# ---------------------------------------------------------------------------------------------- reads
def read_features(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    """Every stored feature row of ``ticker``, in date order."""
    return query(con, f"SELECT * FROM {SCHEMA}.features WHERE ticker = ? ORDER BY date", [ticker])


def read_prices(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    """date, ticker, adj_close, volume of every stored session of ``ticker`` (what features are computed from)."""
    return query(con, f"SELECT date, ticker, adj_close, volume FROM {SCHEMA}.ohlcv WHERE ticker = ? ORDER BY date",
                 [ticker])


def read_oos_predictions(con: duckdb.DuckDBPyConnection, ticker: str, version: str, model: str) -> pl.DataFrame:
    """One model's out-of-sample rows of one ticker and targets version."""
    return read_scoped(con, "oos_predictions", {"ticker": ticker, "targets_version": version}, "model = ?", [model],
                       order="horizon, as_of")


def stored_labeler(con: duckdb.DuckDBPyConnection, ticker: str) -> str | None:
    """The labeler that produced ``ticker``'s market.regime_labels (``user`` for a user's file), None when none."""
    row = query(con, f"SELECT any_value(labeler) AS labeler FROM {SCHEMA}.regime_labels WHERE ticker = ?", [ticker])
    return row["labeler"][0] if row.height else None


def read_regime_labels(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    """``ticker``'s market.regime_labels in date order (without the ticker column)."""
    return read_scoped(con, "regime_labels", {"ticker": ticker}, order="date")


def replace_regime_labels(con: duckdb.DuckDBPyConnection, ticker: str, table: pl.DataFrame) -> int:
    """Replace ``ticker``'s labels, in one transaction; other tickers' labels are not touched."""
    return replace_scoped(con, "regime_labels", table, {"ticker": ticker})


def count_rows(con: duckdb.DuckDBPyConnection, table: str, ticker: str) -> int:
    return int(query(con, f"SELECT count(*) AS n FROM {SCHEMA}.{table} WHERE ticker = ?", [ticker])["n"][0])


# ---------------------------------------------------------------------------------------------- ohlcv
def ohlcv_dates_before(con: duckdb.DuckDBPyConnection, ticker: str, start: dt.date) -> list[dt.date]:
    """Stored sessions of ``ticker`` before ``start`` (what decides a full backfill or a chained increment)."""
    return query(con, f"SELECT date FROM {SCHEMA}.ohlcv WHERE ticker = ? AND date < ? ORDER BY date",
                 [ticker, start])["date"].to_list()


def ohlcv_row(con: duckdb.DuckDBPyConnection, ticker: str, day: dt.date) -> dict | None:
    """The stored bar of ``day`` (date, close, adj_close, source), None when there is none."""
    row = query(con, f"SELECT date, close, adj_close, source FROM {SCHEMA}.ohlcv WHERE ticker = ? AND date = ?",
                [ticker, day])
    return row.to_dicts()[0] if row.height else None


def write_ohlcv(con: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date,
                bars: dict[str, tuple[pl.DataFrame, pl.DataFrame]]) -> None:
    """Replace the bars start … end of each ticker in ``bars`` (ticker → (rows, revisions)) and log the vendor
    revisions, all in one transaction; tickers not in ``bars`` are not touched."""
    empty = [ticker for ticker, (rows, _) in bars.items() if rows.is_empty()]
    if not bars or empty:
        raise ValueError(f"refusing to replace {SCHEMA}.ohlcv {start} … {end} of {', '.join(empty) or 'no ticker'} "
                         "with no rows; nothing was changed.")
    ensure_schema(con, ["ohlcv", "ohlcv_revisions"])
    with transaction(con):
        for ticker, (rows, revisions) in bars.items():
            con.execute(f"DELETE FROM {SCHEMA}.ohlcv WHERE ticker = ? AND date BETWEEN ? AND ?", [ticker, start, end])
            insert(con, "ohlcv", rows)
            if revisions.height:
                insert(con, "ohlcv_revisions", revisions)


def write_features(con: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date,
                   tables: dict[str, pl.DataFrame]) -> None:
    """Replace the feature rows start … end of each ticker in ``tables``, all in one transaction."""
    if not tables or any(t.is_empty() for t in tables.values()):
        raise ValueError(f"refusing to replace {SCHEMA}.features {start} … {end} with no rows; nothing was changed.")
    ensure_schema(con, ["features"])
    with transaction(con):
        for ticker, table in tables.items():
            con.execute(f"DELETE FROM {SCHEMA}.features WHERE ticker = ? AND date BETWEEN ? AND ?",
                        [ticker, start, end])
            insert(con, "features", table)


def read_ohlcv(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    return query(con, f"SELECT * FROM {SCHEMA}.ohlcv WHERE ticker = ? ORDER BY date", [ticker])


def read_revisions(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    return query(con, f"SELECT * FROM {SCHEMA}.ohlcv_revisions WHERE ticker = ?", [ticker])


def read_price_lookback(con: duckdb.DuckDBPyConnection, ticker: str, end: dt.date, sessions: int) -> pl.DataFrame:
    """The last ``sessions`` bars up to ``end``: one range costs O(range + lookback), not O(history)."""
    return query(con, f"SELECT * FROM (SELECT date, ticker, adj_close, volume FROM {SCHEMA}.ohlcv WHERE ticker = ? "
                      "AND date <= ? ORDER BY date DESC LIMIT ?) ORDER BY date", [ticker, end, sessions])


# ---------------------------------------------------------------------------------------------- labels
def read_labeler_frame(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    """What a labeler and the models read: every session's features and adjusted close, in date order."""
    return query(con, f"SELECT f.*, o.adj_close FROM {SCHEMA}.features f JOIN {SCHEMA}.ohlcv o USING (ticker, date) "
                      "WHERE f.ticker = ? ORDER BY date", [ticker])


def unlabelled_sessions(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    """Sessions of ``ticker`` with features between its first and last label date that carry no label."""
    return query(con, f"WITH span AS (SELECT min(date) lo, max(date) hi FROM {SCHEMA}.regime_labels WHERE ticker = ?) "
                      f"SELECT f.date FROM {SCHEMA}.features f, span WHERE f.ticker = ? AND f.date BETWEEN span.lo "
                      f"AND span.hi AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.regime_labels l WHERE l.ticker = f.ticker "
                      "AND l.date = f.date) ORDER BY f.date", [ticker, ticker])


def ohlcv_spans(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[dt.date, dt.date]]:
    """ticker → (first, last) stored session of market.ohlcv (empty when the table does not exist yet)."""
    try:
        rows = con.execute(f"SELECT ticker, min(date), max(date) FROM {SCHEMA}.ohlcv GROUP BY ticker").fetchall()
    except duckdb.CatalogException:
        return {}
    return {t: (lo, hi) for t, lo, hi in rows}
