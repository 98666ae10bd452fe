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


# ==============================================================================================================
# forecast ledger (market.regime_forecasts): the daily forecasts, their scoring, and the reads the scoreboard,
# the CLI and the daily asset need. The math lives in regime_platform/ledger.py; only SQL here.
# ==============================================================================================================

TABLES["regime_forecasts"] = """
        as_of DATE NOT NULL, target_date DATE NOT NULL, horizon INTEGER NOT NULL, model VARCHAR NOT NULL,
        predicted_regime INTEGER NOT NULL, probabilities DOUBLE[] NOT NULL, model_version VARCHAR NOT NULL,
        price_source VARCHAR, status VARCHAR NOT NULL, realized_regime INTEGER, labels_version VARCHAR,
        PRIMARY KEY (as_of, model, horizon)"""


def ledger_inputs(con: duckdb.DuckDBPyConnection, ticker: str, as_of, sessions: int) -> tuple[pl.DataFrame, str | None, int | None]:
    """The last `sessions` feature rows up to `as_of`, the price source of `as_of` (None when its close is not
    stored) and the regime known at `as_of` (None when the labels do not cover it)."""
    features = con.execute(
        "SELECT * FROM (SELECT * FROM market.features WHERE ticker = ? AND date <= ? ORDER BY date DESC LIMIT ?) "
        "ORDER BY date", [ticker, as_of, sessions]).pl()
    source = con.execute("SELECT source FROM market.ohlcv WHERE ticker = ? AND date = ? AND close IS NOT NULL",
                         [ticker, as_of]).fetchone()
    known = None
    if table_exists(con, "regime_labels"):
        row = con.execute("SELECT known_regime FROM market.regime_labels WHERE date = ?", [as_of]).fetchone()
        known = None if row is None or row[0] is None else int(row[0])
    return features, (source[0] if source else None), known


def write_forecasts(con: duckdb.DuckDBPyConnection, as_of, rows: pl.DataFrame) -> int:
    """Replace the ledger rows of session `as_of` with `rows`, in one transaction."""
    return replace_rows(con, "regime_forecasts", rows, "as_of = ?", [as_of])


def pending_forecasts(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return con.execute("SELECT as_of, model, horizon, target_date FROM market.regime_forecasts "
                       "WHERE status = 'pending' ORDER BY as_of, model").pl()


def labels_for_scoring(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    if not table_exists(con, "regime_labels"):
        return pl.DataFrame(schema={"date": pl.Date, "regime": pl.Int32, "labeler": pl.Utf8})
    return con.execute("SELECT date, regime, labeler FROM market.regime_labels ORDER BY date").pl()


def apply_scores(con: duckdb.DuckDBPyConnection, scored: pl.DataFrame) -> int:
    """Mark pending rows `scored` with their realized regime and labels version, in one transaction."""
    if scored.is_empty():
        return 0
    with transaction(con):
        con.register("_scores", scored.to_arrow())
        try:
            con.execute(
                "UPDATE market.regime_forecasts f SET status = 'scored', realized_regime = s.realized_regime, "
                "labels_version = s.labels_version FROM _scores s "
                "WHERE f.as_of = s.as_of AND f.model = s.model AND f.horizon = s.horizon AND f.status = 'pending'")
        finally:
            con.unregister("_scores")
    return scored.height


def read_ledger(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    if not table_exists(con, "regime_forecasts"):
        from regime_platform.ledger import LEDGER_SCHEMA

        return pl.DataFrame(schema=LEDGER_SCHEMA)
    return con.execute("SELECT * FROM market.regime_forecasts ORDER BY as_of, model").pl()


def read_oos_pooled(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every walk-forward out-of-sample prediction with a known outcome (the scoreboard pools them per model)."""
    if not table_exists(con, "oos_predictions"):
        return pl.DataFrame(schema={"model": pl.Utf8, "horizon": pl.Int32, "predicted_regime": pl.Int32,
                                    "probabilities": pl.List(pl.Float64), "true_regime": pl.Int32})
    return con.execute("SELECT model, horizon, predicted_regime, probabilities, true_regime "
                       "FROM market.oos_predictions WHERE true_regime IS NOT NULL").pl()


def regime_names(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    if not table_exists(con, "regime_labels"):
        return {}
    rows = con.execute("SELECT DISTINCT regime, regime_name FROM market.regime_labels").fetchall()
    return {int(r): n for r, n in rows if n is not None}


def freshest_dates(con: duckdb.DuckDBPyConnection, ticker: str) -> dict[str, object]:
    """The newest stored date of each dated table (None when the table is absent or empty)."""
    out: dict[str, object] = {}
    for table, column, where in (("ohlcv", "date", "WHERE ticker = ?"), ("features", "date", "WHERE ticker = ?"),
                                 ("regime_labels", "date", ""), ("oos_predictions", "as_of", ""),
                                 ("regime_forecasts", "as_of", "")):
        if not table_exists(con, table):
            out[table] = None
            continue
        out[table] = con.execute(f"SELECT max({column}) FROM {SCHEMA}.{table} {where}",
                                 [ticker] if where else []).fetchone()[0]
    return out
