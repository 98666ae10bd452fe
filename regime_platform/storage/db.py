"""The one way rows are written and read: one transaction per write, polars frames in and out.

Plain DuckDB, no Dagster: the Dagster resource in defs/resources.py opens the connection (through
dagster_duckdb.DuckDBResource) and hands it to these functions.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl

from regime_platform.storage.tables import SCHEMA, body_schema, ensure_schema, key_columns, with_scope


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


def scope_sql(scope: dict[str, str]) -> tuple[str, list]:
    """``ticker = ? AND targets_version = ?`` and its parameters."""
    return " AND ".join(f"{k} = ?" for k in scope), list(scope.values())


def replace_scoped(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, scope: dict[str, str],
                   where: str | None = None, params: list | None = None) -> int:
    """Replace the rows of one scope (a ticker, or a ticker and targets version) — only those also matching
    ``where`` when given — with ``frame``, which gets the scope's key columns, in one transaction. Other tickers'
    and versions' rows are never touched."""
    condition, values = scope_sql(scope)
    if where:
        condition, values = f"{condition} AND ({where})", values + list(params or [])
    return replace_rows(con, table, with_scope(table, frame, scope), condition, values)


def clear_scoped(con: duckdb.DuckDBPyConnection, table: str, scope: dict[str, str]) -> None:
    """Delete one scope's rows, in one transaction: what an asset stores when its honest result is "nothing"."""
    ensure_schema(con, [table])
    condition, values = scope_sql(scope)
    with transaction(con):
        con.execute(f"DELETE FROM {SCHEMA}.{table} WHERE {condition}", values)


def read_scoped(con: duckdb.DuckDBPyConnection, table: str, scope: dict[str, str], where: str | None = None,
                params: list | None = None, order: str | None = None) -> pl.DataFrame:
    """The rows of one scope, without its key columns (what the domain code reads), in ``order``."""
    if set(scope) != set(key_columns(table)):
        raise ValueError(f"market.{table} is read per {', '.join(key_columns(table))}; got {', '.join(scope)}.")
    condition, values = scope_sql(scope)
    if where:
        condition, values = f"{condition} AND ({where})", values + list(params or [])
    columns = ", ".join(f'"{c}"' for c in body_schema(table))
    sql = f"SELECT {columns} FROM {SCHEMA}.{table} WHERE {condition}" + (f" ORDER BY {order}" if order else "")
    return query(con, sql, values)


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


class WarehouseUnavailable(RuntimeError):
    """The warehouse file is missing, or another process holds it past the wait: one sentence says which."""


@contextlib.contextmanager
def read_only(path: Path, wait: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection; while a run holds the file, retry for `wait` seconds, then say so in one sentence."""
    if not path.exists():
        raise WarehouseUnavailable(f"no warehouse at {path}: run `make run` first (or set REGIME_DATA_DIR to your "
                                   "data dir).")
    deadline = time.monotonic() + wait
    while True:
        try:
            con = duckdb.connect(str(path), read_only=True)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise WarehouseUnavailable(f"the warehouse {path} is locked by another process (a Dagster run is "
                                           f"writing it); waited {wait:g} s — try again when that run finishes.") \
                    from None
            time.sleep(0.25)
    try:
        yield con
    finally:
        con.close()
