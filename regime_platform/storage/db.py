"""The one way rows are written and read: one transaction per write, polars frames in and out.

Plain DuckDB, no Dagster: the Dagster resource in defs/resources.py opens the connection (through
dagster_duckdb.DuckDBResource) and hands it to these functions.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import duckdb
import polars as pl

from regime_platform.storage.tables import SCHEMA, ensure_schema


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
    with transaction(con):
        con.execute(f"DELETE FROM {SCHEMA}.{table}" + (f" WHERE {where}" if where else ""), params or [])
        insert(con, table, frame)
    return frame.height


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    """Run a SELECT and return a polars frame (the tables are created first so a fresh warehouse reads empty)."""
    ensure_schema(con)
    return con.execute(sql, params or []).pl()


def insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    con.register("_incoming", frame.to_arrow())
    try:
        con.execute(f"INSERT INTO {SCHEMA}.{table} ({columns}) SELECT {columns} FROM _incoming")
    finally:
        con.unregister("_incoming")


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether ``table`` exists (read-only connections, as the CLI opens, cannot create the schema)."""
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [SCHEMA, table]).fetchone()[0])
