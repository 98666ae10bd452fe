"""Named queries of the price tables: ohlcv (and its revisions), features, regime labels."""
from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from regime_platform.storage.db import insert, query, transaction
from regime_platform.storage.tables import SCHEMA, ensure_schema


# ---------------------------------------------------------------------------------------------- reads
def read_features(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    """Every stored feature row of ``ticker``, in date order."""
    return query(con, f"SELECT * FROM {SCHEMA}.features WHERE ticker = ? ORDER BY date", [ticker])


def read_prices(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    """date, ticker, adj_close, volume of every stored session of ``ticker`` (what features are computed from)."""
    return query(con, f"SELECT date, ticker, adj_close, volume FROM {SCHEMA}.ohlcv WHERE ticker = ? ORDER BY date",
                 [ticker])


def read_oos_predictions(con: duckdb.DuckDBPyConnection, model: str) -> pl.DataFrame:
    return query(con, f"SELECT * FROM {SCHEMA}.oos_predictions WHERE model = ? ORDER BY horizon, as_of", [model])


def stored_labeler(con: duckdb.DuckDBPyConnection) -> str | None:
    """The labeler that produced market.regime_labels (``user`` for a user's file), None when it is empty."""
    row = query(con, f"SELECT any_value(labeler) AS labeler FROM {SCHEMA}.regime_labels")
    return row["labeler"][0] if row.height else None


def read_regime_labels(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """market.regime_labels in date order."""
    return query(con, f"SELECT * FROM {SCHEMA}.regime_labels ORDER BY date")


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


def write_ohlcv(con: duckdb.DuckDBPyConnection, ticker: str, start: dt.date, end: dt.date, rows: pl.DataFrame,
                revisions: pl.DataFrame) -> None:
    """Replace ``ticker``'s bars start … end and log vendor revisions, in one transaction."""
    if rows.is_empty():
        raise ValueError(f"refusing to replace {SCHEMA}.ohlcv {start} … {end} with no rows; nothing was changed.")
    ensure_schema(con, ["ohlcv", "ohlcv_revisions"])
    with transaction(con):
        con.execute(f"DELETE FROM {SCHEMA}.ohlcv WHERE ticker = ? AND date BETWEEN ? AND ?", [ticker, start, end])
        insert(con, "ohlcv", rows)
        if revisions.height:
            insert(con, "ohlcv_revisions", revisions)


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
    """Sessions with features between the first and last label date that carry no label."""
    return query(con, f"WITH span AS (SELECT min(date) lo, max(date) hi FROM {SCHEMA}.regime_labels) "
                      f"SELECT f.date FROM {SCHEMA}.features f, span WHERE f.ticker = ? AND f.date BETWEEN span.lo "
                      f"AND span.hi AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.regime_labels l WHERE l.date = f.date) "
                      "ORDER BY f.date", [ticker])
