"""Named queries of the modeling and evaluation tables: folds, targets, out-of-sample predictions, metrics,
backtest, change timing, and the audit's independent reads."""
from __future__ import annotations

import duckdb
import polars as pl

from regime_platform.storage.db import insert, query, replace_rows, transaction
from regime_platform.storage.tables import SCHEMA, ensure_schema


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
            insert(con, table, frame)


def read_walk_forward_folds(con: duckdb.DuckDBPyConnection, labeler: str, horizon: int) -> pl.DataFrame:
    return query(con, f"SELECT * FROM {SCHEMA}.walk_forward_folds WHERE labeler = ? AND horizon = ? ORDER BY fold",
                 [labeler, horizon])


def read_fold_labels(con: duckdb.DuckDBPyConnection, labeler: str, horizon: int) -> pl.DataFrame:
    return query(con, f"SELECT * FROM {SCHEMA}.fold_labels WHERE labeler = ? AND horizon = ? ORDER BY fold, date",
                 [labeler, horizon])


# ---------------------------------------------------------------------------------------------------------
# evaluation: the tables the evaluation assets write and every query they and their checks run.
# ---------------------------------------------------------------------------------------------------------



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
