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


# ---------------------------------------------------------------------------------------------------------
# evaluation: the tables the evaluation assets write and every query they and their checks run.
# ---------------------------------------------------------------------------------------------------------

# Written by the walk-forward training (one row per labeler, horizon and fold); evaluation reads the risk-off
# regime of each fold from it (the regime with the lowest mean daily return in the fold's training span).
TABLES["walk_forward_folds"] = """
    labeler VARCHAR NOT NULL, horizon INTEGER NOT NULL, fold INTEGER NOT NULL, train_start DATE, train_end DATE,
    test_start DATE, test_end DATE, risk_off_regime INTEGER"""
TABLES["model_metrics"] = """
    model VARCHAR NOT NULL, horizon INTEGER NOT NULL, fold INTEGER, metric VARCHAR NOT NULL, value DOUBLE"""
TABLES["backtest"] = """
    strategy VARCHAR NOT NULL, horizon INTEGER NOT NULL, start_date DATE, end_date DATE, ann_return DOUBLE,
    ann_vol DOUBLE, sharpe DOUBLE, max_drawdown DOUBLE, switches INTEGER, time_in_market DOUBLE"""
TABLES["regime_change_timing"] = """
    model VARCHAR NOT NULL, horizon INTEGER NOT NULL, change_date DATE NOT NULL, from_regime INTEGER,
    to_regime INTEGER, first_call_date DATE, first_lead_sessions INTEGER, call_date DATE, lead_sessions INTEGER,
    flipped_back BOOLEAN"""


def walk_forward_predictions(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every stored out-of-sample prediction (every model and horizon), in a stable order."""
    if not table_exists(con, "oos_predictions"):
        raise ValueError(f"{SCHEMA}.oos_predictions does not exist: materialize the model assets first.")
    return con.execute(f"SELECT model, fold, as_of, target_date, horizon, predicted_regime, probabilities, "
                       f"true_regime, known_regime FROM {SCHEMA}.oos_predictions "
                       "ORDER BY model, horizon, as_of").pl()


def adj_close_history(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    """date, adj_close of every stored session of `ticker`."""
    return query(con, f"SELECT date, adj_close FROM {SCHEMA}.ohlcv WHERE ticker = ? ORDER BY date", [ticker])


def stored_labeler(con: duckdb.DuckDBPyConnection) -> str | None:
    """The labeler of the stored regime labels (`user` for a user's file), None when there are none."""
    if not table_exists(con, "regime_labels"):
        return None
    row = con.execute(f"SELECT any_value(labeler) FROM {SCHEMA}.regime_labels").fetchone()
    return row[0] if row else None


def regime_history(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """date, regime, regime_name of the stored labels (empty when none are stored)."""
    if not table_exists(con, "regime_labels"):
        return pl.DataFrame(schema={"date": pl.Date, "regime": pl.Int32, "regime_name": pl.Utf8})
    return con.execute(f"SELECT date, regime, regime_name FROM {SCHEMA}.regime_labels ORDER BY date").pl()


def fold_risk_off_regimes(con: duckdb.DuckDBPyConnection, labeler: str | None) -> dict[int, dict[int, int]]:
    """horizon → {fold → risk-off regime} from market.walk_forward_folds (of `labeler` when given)."""
    sql = f"SELECT horizon, fold, risk_off_regime FROM {SCHEMA}.walk_forward_folds WHERE risk_off_regime IS NOT NULL"
    params: list = []
    if labeler is not None:
        sql += " AND labeler = ?"
        params.append(labeler)
    out: dict[int, dict[int, int]] = {}
    for horizon, fold, regime in query(con, sql, params).iter_rows():
        out.setdefault(int(horizon), {})[int(fold)] = int(regime)
    return out


def stored_model_metrics(con: duckdb.DuckDBPyConnection, pooled_only: bool = False) -> pl.DataFrame:
    sql = f"SELECT model, horizon, fold, metric, value FROM {SCHEMA}.model_metrics"
    if pooled_only:
        sql += " WHERE fold IS NULL"
    return query(con, sql + " ORDER BY model, horizon, fold NULLS FIRST, metric")


def stored_backtest(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return query(con, f"SELECT * FROM {SCHEMA}.backtest ORDER BY horizon, strategy")


def stored_change_timing(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return query(con, f"SELECT * FROM {SCHEMA}.regime_change_timing ORDER BY horizon, model, change_date")


# The audit queries below recompute from stored rows in SQL, a code path independent of the domain modules
# (metrics_reproducible compares the two).

def audit_confusion_counts(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """model, horizon, true_regime, predicted_regime, n over the scored out-of-sample rows."""
    return query(con, f"""
        SELECT model, horizon, true_regime, predicted_regime, count(*) AS n
        FROM {SCHEMA}.oos_predictions
        WHERE true_regime IS NOT NULL AND predicted_regime IS NOT NULL
        GROUP BY ALL ORDER BY ALL""")


def audit_transition_scores(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """model, horizon, transition_count, transition_hits (rows whose truth differs from the regime known at t)."""
    return query(con, f"""
        SELECT model, horizon, count(*) AS transition_count,
               sum(CASE WHEN predicted_regime = true_regime THEN 1 ELSE 0 END) AS transition_hits
        FROM {SCHEMA}.oos_predictions
        WHERE true_regime IS NOT NULL AND predicted_regime IS NOT NULL AND known_regime IS NOT NULL
          AND known_regime <> true_regime
        GROUP BY ALL ORDER BY ALL""")


def audit_scored_probabilities(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """model, horizon, true_regime, probabilities of the scored rows (for the Brier recomputation)."""
    return query(con, f"""
        SELECT model, horizon, true_regime, probabilities FROM {SCHEMA}.oos_predictions
        WHERE true_regime IS NOT NULL AND predicted_regime IS NOT NULL ORDER BY model, horizon, as_of""")


def audit_long_signals(con: duckdb.DuckDBPyConnection, labeler: str | None, risk_off_override: int | None) -> pl.DataFrame:
    """model, horizon, as_of, long (1 unless the forecast is the fold's risk-off regime, or the override)."""
    return query(con, f"""
        SELECT o.model, o.horizon, o.as_of,
               CASE WHEN o.predicted_regime = coalesce(?, f.risk_off_regime) THEN 0 ELSE 1 END AS long
        FROM {SCHEMA}.oos_predictions o
        LEFT JOIN (SELECT DISTINCT horizon, fold, risk_off_regime FROM {SCHEMA}.walk_forward_folds
                   WHERE ? IS NULL OR labeler = ?) f
          ON f.horizon = o.horizon AND f.fold = o.fold
        ORDER BY o.model, o.horizon, o.as_of""", [risk_off_override, labeler, labeler])


def audit_price_path(con: duckdb.DuckDBPyConnection, ticker: str, sma_window: int = 200) -> pl.DataFrame:
    """date, daily simple return of adj_close, and whether the close is above its `sma_window`-session mean."""
    return query(con, f"""
        SELECT date,
               adj_close / lag(adj_close) OVER w - 1 AS daily_return,
               CASE WHEN count(*) OVER s = ? AND adj_close > avg(adj_close) OVER s THEN 1 ELSE 0 END AS above_sma
        FROM {SCHEMA}.ohlcv WHERE ticker = ?
        WINDOW w AS (ORDER BY date), s AS (ORDER BY date ROWS BETWEEN {int(sma_window) - 1} PRECEDING AND CURRENT ROW)
        ORDER BY date""", [sma_window, ticker])
