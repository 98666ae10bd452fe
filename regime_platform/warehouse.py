"""The DuckDB warehouse: table definitions and the one way rows are written (one transaction each).

Plain DuckDB, no Dagster: the Dagster resource in defs/resources.py opens the connection (through
dagster_duckdb.DuckDBResource) and hands it to these functions.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import duckdb
import polars as pl

SCHEMA = "market"

# Column order is part of the contract (DESIGN §2): inserts match columns by name, reads keep this order.
TABLES: dict[str, str] = {
    "ohlcv": """
        date DATE NOT NULL, ticker VARCHAR NOT NULL, open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE,
        adj_close DOUBLE, volume DOUBLE, source VARCHAR NOT NULL, ingested_at TIMESTAMP NOT NULL,
        PRIMARY KEY (ticker, date)""",
    "ohlcv_revisions": """
        ticker VARCHAR NOT NULL, date DATE NOT NULL, stored_close DOUBLE, vendor_close DOUBLE,
        source VARCHAR, detected_at TIMESTAMP NOT NULL""",
}


def register_table(name: str, columns_sql: str) -> None:
    """Domain modules add their tables here (features, labels, predictions …) at import time."""
    TABLES[name] = columns_sql


def ensure_schema(con: duckdb.DuckDBPyConnection, tables: list[str] | None = None) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for name in tables or list(TABLES):
        con.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{name} ({TABLES[name]})")


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT, or ROLLBACK on any error: a crash leaves the old rows or the new ones, never neither."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def replace_rows(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame,
                 where: str | None = None, params: list | None = None) -> int:
    """Delete the rows matching `where` (all rows when None) and insert `frame`, in one transaction.

    An empty frame is refused: a failed computation must raise, never erase what is stored.
    """
    if frame.is_empty():
        raise ValueError(f"refusing to replace rows of {SCHEMA}.{table} with an empty frame; nothing was changed.")
    ensure_schema(con, [table])
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    with transaction(con):
        con.execute(f"DELETE FROM {SCHEMA}.{table}" + (f" WHERE {where}" if where else ""), params or [])
        con.register("_incoming", frame.to_arrow())
        try:
            con.execute(f"INSERT INTO {SCHEMA}.{table} ({columns}) SELECT {columns} FROM _incoming")
        finally:
            con.unregister("_incoming")
    return frame.height


def append_rows(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    if frame.is_empty():
        return 0
    ensure_schema(con, [table])
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    with transaction(con):
        con.register("_incoming", frame.to_arrow())
        try:
            con.execute(f"INSERT INTO {SCHEMA}.{table} ({columns}) SELECT {columns} FROM _incoming")
        finally:
            con.unregister("_incoming")
    return frame.height


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    """Run a SELECT and return a polars frame (the tables are created first so a fresh warehouse reads empty)."""
    ensure_schema(con)
    return con.execute(sql, params or []).pl()


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [SCHEMA, table]).fetchone()[0])


# ================================================================================================
# explainability: feature attributions and regime profiles (regime_platform/defs/explainability/)
# ================================================================================================
TABLES["feature_attributions"] = """
        model VARCHAR NOT NULL, method VARCHAR NOT NULL, regime INTEGER, feature VARCHAR, lag INTEGER,
        value DOUBLE, spread DOUBLE, windows INTEGER"""
# regime NULL = all windows; lag NULL = the method does not resolve time; feature '(all features)' = the
# method does not resolve features; spread = std over permutation repeats (NULL for captum methods).

TABLES["regime_profiles"] = """
        scope VARCHAR NOT NULL, fold INTEGER, fit_start DATE, fit_end DATE, regime INTEGER NOT NULL,
        statistic VARCHAR NOT NULL, value DOUBLE"""
# scope 'stored' = the stored labels (fold NULL); 'refit' = the labeler refit on a walk-forward fold's
# training span (fold, fit_start, fit_end set). Long: a new statistic is a new row.


def explanation_sessions(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    """Every session's features and adjusted close with its stored label (NULL where none), in date order."""
    return query(con, """
        SELECT f.*, o.adj_close, l.regime, l.known_regime, l.regime_name, l.labeler
        FROM market.features f JOIN market.ohlcv o USING (ticker, date)
        LEFT JOIN market.regime_labels l USING (date)
        WHERE f.ticker = ? ORDER BY date""", [ticker])


def replace_feature_attributions(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> int:
    """Replace the attribution rows of the (model, method) pairs present in ``rows``, in one transaction."""
    pairs = rows.select("model", "method").unique().sort("model", "method")
    where = " OR ".join(["(model = ? AND method = ?)"] * pairs.height)
    params = [v for pair in pairs.iter_rows() for v in pair]
    return replace_rows(con, "feature_attributions", rows, where, params)


def read_feature_attributions(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return query(con, "SELECT * FROM market.feature_attributions ORDER BY model, method, regime, feature, lag")


def replace_regime_profiles(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> int:
    """Replace every stored regime profile row (stored labels and refits) in one transaction."""
    return replace_rows(con, "regime_profiles", rows)
