"""Warehouses made before every table was keyed by ticker (and targets version) upgraded in place, once.

`CREATE TABLE IF NOT EXISTS` never adds a column, so an older warehouse would fail on its first keyed query. The
forecast ledger holds forecasts actually made — nothing can recompute them — so it is rebuilt with the ticker it
was made for; so are the labels (cheap to keep, and the ledger is scored against them). Everything the models and
the evaluation wrote is recomputed by re-materializing them and cannot be given a targets version after the fact:
those tables are dropped, and the caller is told which. Each table is upgraded in one transaction.
"""
from __future__ import annotations

import duckdb

from regime_platform.storage.db import transaction
from regime_platform.storage.tables import SCHEMA, TABLES, ensure_schema, key_columns

KEPT = ("regime_forecasts", "regime_labels")  # rebuilt with their ticker; every other keyed table is recomputable


def legacy_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The keyed tables present without their key columns."""
    rows = con.execute("SELECT table_name, list(column_name) FROM information_schema.columns WHERE table_schema = ? "
                       "GROUP BY table_name", [SCHEMA]).fetchall()
    present = {name: set(columns) for name, columns in rows}
    return sorted(t for t in TABLES if t in present and key_columns(t) and not set(key_columns(t)) <= present[t])


def add_new_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Add the nullable columns declared since a table was created (e.g. the ledger's `known_regime`); old rows get
    NULL there — honest: what they were made from was not recorded. One sentence per table changed."""
    rows = con.execute("SELECT table_name, list(column_name) FROM information_schema.columns WHERE table_schema = ? "
                       "GROUP BY table_name", [SCHEMA]).fetchall()
    said = []
    for name, present in rows:
        if name not in TABLES:
            continue
        missing = [(c, sql) for c, sql, _ in TABLES[name].columns if c not in present and "NOT NULL" not in sql]
        if not missing:
            continue
        with transaction(con):
            for column, sql in missing:
                con.execute(f"ALTER TABLE {SCHEMA}.{name} ADD COLUMN {column} {sql}")
        said.append(f"market.{name} gained the column(s) {', '.join(c for c, _ in missing)}; its stored rows have NULL "
                    "there.")
    return said


def upgrade_legacy_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Upgrade every legacy table; returns one sentence per table changed (empty when there was nothing to do)."""
    legacy = legacy_tables(con)
    if not legacy:
        return add_new_columns(con)
    tickers = [t for (t,) in con.execute(f"SELECT DISTINCT ticker FROM {SCHEMA}.ohlcv").fetchall()] \
        if "ohlcv" not in legacy and _exists(con, "ohlcv") else []
    kept = [t for t in legacy if t in KEPT]
    if kept and len(tickers) != 1:  # before anything changes
        raise RuntimeError(
            f"market.{kept[0]} predates per-ticker keys and market.ohlcv holds {len(tickers)} tickers, so the ticker "
            f"its rows were made for is unknown: export the table, delete it, and re-run.")
    said = []
    for table in legacy:
        if table in KEPT:
            _rebuild_with_ticker(con, table, tickers[0])
            said.append(f"market.{table} predates per-ticker keys: its rows were kept and filed under {tickers[0]}, "
                        "the one ticker the warehouse held.")
        else:
            with transaction(con):
                con.execute(f"DROP TABLE {SCHEMA}.{table}")
            said.append(f"market.{table} predates the ticker and targets-version keys and was dropped (it is "
                        "recomputed): re-materialize the modeling and evaluation assets.")
    ensure_schema(con)
    return said + add_new_columns(con)


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                            [SCHEMA, table]).fetchone()[0])


def _rebuild_with_ticker(con: duckdb.DuckDBPyConnection, table: str, ticker: str) -> None:
    old = f"{table}_before_ticker_keys"
    present = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                                         "AND table_name = ?", [SCHEMA, table]).fetchall()}
    columns = [name for name, _, _ in TABLES[table].columns if name != "ticker" and name in present]
    with transaction(con):
        con.execute(f"ALTER TABLE {SCHEMA}.{table} RENAME TO {old}")
        con.execute(f"CREATE TABLE {SCHEMA}.{table} ({TABLES[table].ddl()})")
        listed = ", ".join(columns)
        con.execute(f"INSERT INTO {SCHEMA}.{table} (ticker, {listed}) SELECT ?, {listed} FROM {SCHEMA}.{old}", [ticker])
        con.execute(f"DROP TABLE {SCHEMA}.{old}")
