"""The DuckDB warehouse: table definitions and the one way rows are written (one transaction each).

Plain DuckDB, no Dagster: the Dagster resource in defs/resources.py opens the connection (through
dagster_duckdb.DuckDBResource) and hands it to these functions.
"""
from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from typing import Iterator

import duckdb
import polars as pl

from regime_platform.features import FEATURE_COLUMNS

SCHEMA = "market"


@dataclass(frozen=True)
class Table:
    """One table, declared once: its columns (DuckDB type, polars type) in contract order, and constraints."""

    columns: tuple[tuple[str, str, pl.DataType], ...]
    constraints: str = ""

    def ddl(self) -> str:
        cols = [f"{name} {sql}" for name, sql, _ in self.columns]
        return ", ".join(cols + ([self.constraints] if self.constraints else []))

    @property
    def schema(self) -> dict[str, pl.DataType]:
        return {name: dtype for name, _, dtype in self.columns}


_DATE, _INT, _DOUBLE, _TEXT = pl.Date, pl.Int32, pl.Float64, pl.String

# Column order is part of the contract (the README's tables): inserts match columns by name, reads keep this order.
TABLES: dict[str, Table] = {
    "ohlcv": Table((
        ("date", "DATE NOT NULL", _DATE), ("ticker", "VARCHAR NOT NULL", _TEXT), ("open", "DOUBLE", _DOUBLE),
        ("high", "DOUBLE", _DOUBLE), ("low", "DOUBLE", _DOUBLE), ("close", "DOUBLE", _DOUBLE),
        ("adj_close", "DOUBLE", _DOUBLE), ("volume", "DOUBLE", _DOUBLE), ("source", "VARCHAR NOT NULL", _TEXT),
        ("ingested_at", "TIMESTAMP NOT NULL", pl.Datetime("us"))), "PRIMARY KEY (ticker, date)"),
    "ohlcv_revisions": Table((
        ("ticker", "VARCHAR NOT NULL", _TEXT), ("date", "DATE NOT NULL", _DATE), ("stored_close", "DOUBLE", _DOUBLE),
        ("vendor_close", "DOUBLE", _DOUBLE), ("source", "VARCHAR", _TEXT),
        ("detected_at", "TIMESTAMP NOT NULL", pl.Datetime("us")))),
    "features": Table((("date", "DATE NOT NULL", _DATE), ("ticker", "VARCHAR NOT NULL", _TEXT),
                       *((c, "DOUBLE", _DOUBLE) for c in FEATURE_COLUMNS)), "PRIMARY KEY (ticker, date)"),
    "regime_labels": Table((
        ("date", "DATE NOT NULL PRIMARY KEY", _DATE), ("regime", "INTEGER NOT NULL", _INT),
        ("known_regime", "INTEGER", _INT), ("regime_name", "VARCHAR", _TEXT), ("labeler", "VARCHAR NOT NULL", _TEXT),
        ("fit_start", "DATE", _DATE), ("fit_end", "DATE", _DATE))),
    "oos_predictions": Table((
        ("model", "VARCHAR NOT NULL", _TEXT), ("fold", "INTEGER", _INT), ("as_of", "DATE NOT NULL", _DATE),
        ("target_date", "DATE NOT NULL", _DATE), ("horizon", "INTEGER NOT NULL", _INT),
        ("predicted_regime", "INTEGER", _INT), ("probabilities", "DOUBLE[]", pl.List(pl.Float64)),
        ("true_regime", "INTEGER", _INT), ("known_regime", "INTEGER", _INT))),
    # the walk-forward folds of one labeler and horizon, with each fold's refit labeler and risk-off regime
    "walk_forward_folds": Table((
        ("labeler", "VARCHAR NOT NULL", _TEXT), ("horizon", "INTEGER NOT NULL", _INT), ("fold", "INTEGER NOT NULL", _INT),
        ("test_year", "INTEGER", _INT), ("train_start", "DATE", _DATE), ("train_end", "DATE", _DATE),
        ("train_target_end", "DATE", _DATE), ("test_start", "DATE", _DATE), ("test_end", "DATE", _DATE),
        ("test_target_end", "DATE", _DATE), ("labeler_fit_start", "DATE", _DATE), ("labeler_fit_end", "DATE", _DATE),
        ("n_classes", "INTEGER", _INT), ("state_mapping", "VARCHAR", _TEXT),
        ("regime_mean_returns", "DOUBLE[]", pl.List(pl.Float64)), ("risk_off_regime", "INTEGER", _INT))),
    # every fold's targets: hindsight labels of the training span, of training + test span, and the causal ones
    "fold_labels": Table((
        ("labeler", "VARCHAR NOT NULL", _TEXT), ("horizon", "INTEGER NOT NULL", _INT), ("fold", "INTEGER NOT NULL", _INT),
        ("date", "DATE NOT NULL", _DATE), ("train_regime", "INTEGER", _INT), ("test_regime", "INTEGER", _INT),
        ("known_regime", "INTEGER", _INT))),
}


def schema(table: str) -> dict[str, pl.DataType]:
    """The polars schema of ``table`` (column order = the contract's)."""
    return TABLES[table].schema


def ensure_schema(con: duckdb.DuckDBPyConnection, tables: list[str] | None = None) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for name in tables or list(TABLES):
        con.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{name} ({TABLES[name].ddl()})")


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
        _insert(con, table, frame)
    return frame.height


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    """Run a SELECT and return a polars frame (the tables are created first so a fresh warehouse reads empty)."""
    ensure_schema(con)
    return con.execute(sql, params or []).pl()


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
        _insert(con, "ohlcv", rows)
        if revisions.height:
            _insert(con, "ohlcv_revisions", revisions)


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    con.register("_incoming", frame.to_arrow())
    try:
        con.execute(f"INSERT INTO {SCHEMA}.{table} ({columns}) SELECT {columns} FROM _incoming")
    finally:
        con.unregister("_incoming")


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


# ---------------------------------------------------------------------------------------------- modeling
def replace_oos_predictions(con: duckdb.DuckDBPyConnection, model: str, horizon: int, frame: pl.DataFrame) -> int:
    """Replace one model's out-of-sample rows of one horizon, in one transaction."""
    return replace_rows(con, "oos_predictions", frame, "model = ? AND horizon = ?", [model, horizon])


def replace_walk_forward_targets(con: duckdb.DuckDBPyConnection, labeler: str, horizon: int, folds: pl.DataFrame,
                                 fold_labels: pl.DataFrame) -> None:
    """Replace the folds and fold labels of one labeler and horizon, both in one transaction."""
    if folds.is_empty() or fold_labels.is_empty():
        raise ValueError("refusing to store walk-forward targets without folds; nothing was changed.")
    ensure_schema(con, ["walk_forward_folds", "fold_labels"])
    with transaction(con):
        for table, frame in (("walk_forward_folds", folds), ("fold_labels", fold_labels)):
            con.execute(f"DELETE FROM {SCHEMA}.{table} WHERE labeler = ? AND horizon = ?", [labeler, horizon])
            _insert(con, table, frame)


def read_walk_forward_folds(con: duckdb.DuckDBPyConnection, labeler: str, horizon: int) -> pl.DataFrame:
    return query(con, f"SELECT * FROM {SCHEMA}.walk_forward_folds WHERE labeler = ? AND horizon = ? ORDER BY fold",
                 [labeler, horizon])


def read_fold_labels(con: duckdb.DuckDBPyConnection, labeler: str, horizon: int) -> pl.DataFrame:
    return query(con, f"SELECT * FROM {SCHEMA}.fold_labels WHERE labeler = ? AND horizon = ? ORDER BY fold, date",
                 [labeler, horizon])


# ---------------------------------------------------------------------------------------------------------
# evaluation: the tables the evaluation assets write and every query they and their checks run.
# ---------------------------------------------------------------------------------------------------------

TABLES["model_metrics"] = Table((
    ("model", "VARCHAR NOT NULL", _TEXT), ("horizon", "INTEGER NOT NULL", _INT), ("fold", "INTEGER", _INT),
    ("metric", "VARCHAR NOT NULL", _TEXT), ("value", "DOUBLE", _DOUBLE)))
TABLES["backtest"] = Table((
    ("strategy", "VARCHAR NOT NULL", _TEXT), ("horizon", "INTEGER NOT NULL", _INT), ("start_date", "DATE", _DATE),
    ("end_date", "DATE", _DATE), ("ann_return", "DOUBLE", _DOUBLE), ("ann_vol", "DOUBLE", _DOUBLE),
    ("sharpe", "DOUBLE", _DOUBLE), ("max_drawdown", "DOUBLE", _DOUBLE), ("switches", "INTEGER", _INT),
    ("time_in_market", "DOUBLE", _DOUBLE)))
TABLES["regime_change_timing"] = Table((
    ("model", "VARCHAR NOT NULL", _TEXT), ("horizon", "INTEGER NOT NULL", _INT), ("change_date", "DATE NOT NULL", _DATE),
    ("from_regime", "INTEGER", _INT), ("to_regime", "INTEGER", _INT), ("first_call_date", "DATE", _DATE),
    ("first_lead_sessions", "INTEGER", _INT), ("call_date", "DATE", _DATE), ("lead_sessions", "INTEGER", _INT),
    ("flipped_back", "BOOLEAN", pl.Boolean)))


def walk_forward_predictions(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every stored out-of-sample prediction (every model and horizon), in a stable order."""
    return query(con, f"SELECT model, fold, as_of, target_date, horizon, predicted_regime, probabilities, "
                      f"true_regime, known_regime FROM {SCHEMA}.oos_predictions ORDER BY model, horizon, as_of")


def adj_close_history(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    """date, adj_close of every stored session of `ticker`."""
    return query(con, f"SELECT date, adj_close FROM {SCHEMA}.ohlcv WHERE ticker = ? ORDER BY date", [ticker])


def regime_history(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """date, regime, regime_name of the stored labels (empty when none are stored)."""
    return query(con, f"SELECT date, regime, regime_name FROM {SCHEMA}.regime_labels ORDER BY date")


def fold_risk_off_regimes(con: duckdb.DuckDBPyConnection, labeler: str | None) -> dict[int, dict[int, int]]:
    """horizon → {fold → risk-off regime} from market.walk_forward_folds (of `labeler` when given)."""
    sql = (f"SELECT horizon, fold, risk_off_regime FROM {SCHEMA}.walk_forward_folds "
           "WHERE risk_off_regime IS NOT NULL AND fold >= 0")  # fold -1 holds the production labels, not a test year
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


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether ``table`` exists (read-only connections, as the CLI opens, cannot create the schema)."""
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [SCHEMA, table]).fetchone()[0])


# ==============================================================================================================
# forecast ledger (market.regime_forecasts): the daily forecasts, their scoring, and the reads the scoreboard,
# the CLI and the daily asset need. The math lives in regime_platform/ledger.py; only SQL here.
# ==============================================================================================================

TABLES["regime_forecasts"] = Table((
    ("as_of", "DATE NOT NULL", _DATE), ("target_date", "DATE NOT NULL", _DATE), ("horizon", "INTEGER NOT NULL", _INT),
    ("model", "VARCHAR NOT NULL", _TEXT), ("predicted_regime", "INTEGER NOT NULL", _INT),
    ("probabilities", "DOUBLE[] NOT NULL", pl.List(pl.Float64)), ("model_version", "VARCHAR NOT NULL", _TEXT),
    ("price_source", "VARCHAR", _TEXT), ("status", "VARCHAR NOT NULL", _TEXT), ("realized_regime", "INTEGER", _INT),
    ("labels_version", "VARCHAR", _TEXT)), "PRIMARY KEY (as_of, model, horizon)")


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


def recent_forecasts(con: duckdb.DuckDBPyConnection, model: str, horizon: int, before, n: int) -> pl.DataFrame:
    """The ledger's last ``n`` rows of one model and horizon made before session ``before`` (as_of-ordered):
    what the decision rule needs to continue from (predicted_regime, probabilities)."""
    return con.execute(
        "SELECT * FROM (SELECT as_of, predicted_regime, probabilities FROM market.regime_forecasts "
        "WHERE model = ? AND horizon = ? AND as_of < ? ORDER BY as_of DESC LIMIT ?) ORDER BY as_of",
        [model, horizon, before, n]).pl()


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


def ledger_counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(pending rows, all rows) of the ledger."""
    row = query(con, f"SELECT count(*) FILTER (WHERE status = 'pending') AS pending, count(*) AS total "
                     f"FROM {SCHEMA}.regime_forecasts")
    return int(row["pending"][0]), int(row["total"][0])


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


# ================================================================================================
# explainability: feature attributions and regime profiles (regime_platform/defs/explainability/)
# ================================================================================================
TABLES["feature_attributions"] = Table((
    ("model", "VARCHAR NOT NULL", _TEXT), ("method", "VARCHAR NOT NULL", _TEXT), ("regime", "INTEGER", _INT),
    ("feature", "VARCHAR", _TEXT), ("lag", "INTEGER", _INT), ("value", "DOUBLE", _DOUBLE),
    ("spread", "DOUBLE", _DOUBLE), ("windows", "INTEGER", _INT)))
# regime NULL = all windows; lag NULL = the method does not resolve time; feature '(all features)' = the
# method does not resolve features; spread = std over permutation repeats (NULL for captum methods).

TABLES["regime_profiles"] = Table((
    ("scope", "VARCHAR NOT NULL", _TEXT), ("fold", "INTEGER", _INT), ("fit_start", "DATE", _DATE),
    ("fit_end", "DATE", _DATE), ("regime", "INTEGER NOT NULL", _INT), ("statistic", "VARCHAR NOT NULL", _TEXT),
    ("value", "DOUBLE", _DOUBLE)))
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
