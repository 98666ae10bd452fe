"""Named queries of the modeling and evaluation tables: folds, targets, out-of-sample predictions, metrics,
backtest, change timing, and the audit's independent reads.

Every read and write is scoped to one ticker and one targets version (DESIGN §2): nothing here pools two.
"""
from __future__ import annotations

import duckdb
import polars as pl

from regime_platform.storage.db import insert, query, read_scoped, replace_scoped, transaction
from regime_platform.storage.tables import SCHEMA, ensure_schema, with_scope


def _scope(ticker: str, version: str) -> dict[str, str]:
    return {"ticker": ticker, "targets_version": version}


# ---------------------------------------------------------------------------------------------- modeling
def replace_model_walk_forward(con: duckdb.DuckDBPyConnection, ticker: str, version: str, model: str,
                               oos: pl.DataFrame, records: pl.DataFrame) -> int:
    """Replace one model's out-of-sample rows and its fold records of one ticker and targets version, both in one
    transaction: a reader never sees one run's records beside another's rows. Returns the rows stored."""
    frames = {"fold_records": records.with_columns(pl.lit(model).alias("model")), "oos_predictions": oos}
    if any(frame.is_empty() for frame in frames.values()):
        raise ValueError(f"refusing to store {model}'s walk-forward without rows or fold records; nothing was changed.")
    if set(oos["model"].unique().to_list()) != {model}:
        raise ValueError(f"rows for {model}'s walk-forward carry other models' names; nothing was written.")
    ensure_schema(con, list(frames))
    scope = _scope(ticker, version)
    with transaction(con):
        for table, frame in frames.items():
            con.execute(f"DELETE FROM {SCHEMA}.{table} WHERE ticker = ? AND targets_version = ? AND model = ?",
                        [ticker, version, model])
            insert(con, table, with_scope(table, frame, scope))
    return oos.height


def read_fold_records(con: duckdb.DuckDBPyConnection, ticker: str, version: str, model: str) -> pl.DataFrame:
    """fold, horizon, record (JSON) and walk_forward_digest of one model's stored fold records."""
    return read_scoped(con, "fold_records", _scope(ticker, version), "model = ?", [model], order="horizon, fold")


def replace_walk_forward_targets(con: duckdb.DuckDBPyConnection, ticker: str, version: str, folds: pl.DataFrame,
                                 fold_labels: pl.DataFrame) -> None:
    """Replace the folds and fold labels of one ticker and targets version, both in one transaction."""
    _replace_together(con, ticker, version, {"walk_forward_folds": folds, "fold_labels": fold_labels},
                      "walk-forward targets without folds")


def _replace_together(con: duckdb.DuckDBPyConnection, ticker: str, version: str, frames: dict[str, pl.DataFrame],
                      refused: str) -> None:
    """Replace one ticker and version's rows of several tables in one transaction (none may be empty)."""
    if any(frame.is_empty() for frame in frames.values()):
        raise ValueError(f"refusing to store {refused}; nothing was changed.")
    ensure_schema(con, list(frames))
    scope = _scope(ticker, version)
    with transaction(con):
        for table, frame in frames.items():
            con.execute(f"DELETE FROM {SCHEMA}.{table} WHERE ticker = ? AND targets_version = ?", [ticker, version])
            insert(con, table, with_scope(table, frame, scope))


def read_walk_forward_folds(con: duckdb.DuckDBPyConnection, ticker: str, version: str) -> pl.DataFrame:
    return read_scoped(con, "walk_forward_folds", _scope(ticker, version), order="fold")


def read_fold_labels(con: duckdb.DuckDBPyConnection, ticker: str, version: str) -> pl.DataFrame:
    return read_scoped(con, "fold_labels", _scope(ticker, version), order="fold, date")


def stored_versions(con: duckdb.DuckDBPyConnection, table: str, ticker: str) -> pl.DataFrame:
    """model (where the table has one), targets_version and rows of everything ``table`` holds for ``ticker``."""
    model = "model, " if table in ("oos_predictions", "model_metrics", "regime_change_timing",
                                   "feature_attributions") else ""
    return query(con, f"SELECT {model}targets_version, count(*) AS rows FROM {SCHEMA}.{table} WHERE ticker = ? "
                      f"GROUP BY ALL ORDER BY ALL", [ticker])


# ---------------------------------------------------------------------------------------------------------
# evaluation: the tables the evaluation assets write and every query they and their checks run.
# ---------------------------------------------------------------------------------------------------------
def walk_forward_predictions(con: duckdb.DuckDBPyConnection, ticker: str, version: str) -> pl.DataFrame:
    """Every stored out-of-sample prediction of one ticker and targets version (every model), in a stable order."""
    return read_scoped(con, "oos_predictions", _scope(ticker, version), order="model, horizon, as_of")


def replace_evaluation(con: duckdb.DuckDBPyConnection, table: str, ticker: str, version: str,
                       frame: pl.DataFrame) -> int:
    """Replace what one evaluation asset wrote for one ticker and targets version, in one transaction."""
    return replace_scoped(con, table, frame, _scope(ticker, version))


def adj_close_history(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    """date, adj_close of every stored session of `ticker`."""
    return query(con, f"SELECT date, adj_close FROM {SCHEMA}.ohlcv WHERE ticker = ? ORDER BY date", [ticker])


def regime_history(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    """date, regime, regime_name of ``ticker``'s stored labels (empty when none are stored)."""
    return query(con, f"SELECT date, regime, regime_name FROM {SCHEMA}.regime_labels WHERE ticker = ? ORDER BY date",
                 [ticker])


def fold_training_spans(con: duckdb.DuckDBPyConnection, ticker: str,
                        version: str) -> dict[int, dict[int, tuple]]:
    """horizon → {fold → (train_start, train_end)} of the test folds in market.walk_forward_folds."""
    rows = query(con, f"SELECT horizon, fold, train_start, train_end FROM {SCHEMA}.walk_forward_folds "
                      "WHERE ticker = ? AND targets_version = ? AND fold >= 0 AND train_start IS NOT NULL",
                 [ticker, version])
    out: dict[int, dict[int, tuple]] = {}
    for horizon, fold, start, end in rows.iter_rows():
        out.setdefault(int(horizon), {})[int(fold)] = (start, end)
    return out


def replace_backtest(con: duckdb.DuckDBPyConnection, ticker: str, version: str, backtest: pl.DataFrame,
                     comparison: pl.DataFrame) -> None:
    """Replace the backtest and the paired baseline comparison of one ticker and version, in one transaction."""
    _replace_together(con, ticker, version, {"backtest": backtest, "baseline_comparison": comparison},
                      "an empty backtest or baseline comparison")


def stored_baseline_comparison(con: duckdb.DuckDBPyConnection, ticker: str, version: str) -> pl.DataFrame:
    return read_scoped(con, "baseline_comparison", _scope(ticker, version), order="horizon, model, baseline, metric")


def fold_risk_off_regimes(con: duckdb.DuckDBPyConnection, ticker: str, version: str) -> dict[int, dict[int, int]]:
    """horizon → {fold → risk-off regime} from market.walk_forward_folds of one ticker and targets version."""
    rows = query(con, f"SELECT horizon, fold, risk_off_regime FROM {SCHEMA}.walk_forward_folds "
                      "WHERE ticker = ? AND targets_version = ? AND risk_off_regime IS NOT NULL AND fold >= 0",
                 [ticker, version])  # fold -1 holds the production labels, not a test year
    out: dict[int, dict[int, int]] = {}
    for horizon, fold, regime in rows.iter_rows():
        out.setdefault(int(horizon), {})[int(fold)] = int(regime)
    return out


def stored_model_metrics(con: duckdb.DuckDBPyConnection, ticker: str, version: str,
                         pooled_only: bool = False) -> pl.DataFrame:
    return read_scoped(con, "model_metrics", _scope(ticker, version), "fold IS NULL" if pooled_only else None,
                       order="model, horizon, fold NULLS FIRST, metric")


def stored_backtest(con: duckdb.DuckDBPyConnection, ticker: str, version: str) -> pl.DataFrame:
    return read_scoped(con, "backtest", _scope(ticker, version), order="horizon, strategy")


def stored_change_timing(con: duckdb.DuckDBPyConnection, ticker: str, version: str) -> pl.DataFrame:
    return read_scoped(con, "regime_change_timing", _scope(ticker, version), order="horizon, model, change_date")


# The audit queries below recompute from stored rows in SQL, a code path independent of the domain modules
# (metrics_reproducible compares the two). Each is scoped to one ticker and targets version.
_OOS = f"(SELECT * FROM {SCHEMA}.oos_predictions WHERE ticker = ? AND targets_version = ?)"


def audit_confusion_counts(con: duckdb.DuckDBPyConnection, ticker: str, version: str) -> pl.DataFrame:
    """model, horizon, true_regime, predicted_regime, n over the scored out-of-sample rows."""
    return query(con, f"""
        SELECT model, horizon, true_regime, predicted_regime, count(*) AS n
        FROM {_OOS}
        WHERE true_regime IS NOT NULL AND predicted_regime IS NOT NULL
        GROUP BY ALL ORDER BY ALL""", [ticker, version])


def audit_transition_scores(con: duckdb.DuckDBPyConnection, ticker: str, version: str) -> pl.DataFrame:
    """model, horizon, true_regime, transition_count, transition_hits: the rows whose true regime at the target
    differs from the true regime at the forecast date (read from the same model's row that targets it)."""
    return query(con, f"""
        WITH o AS (SELECT * FROM {_OOS})
        SELECT o.model, o.horizon, o.true_regime, count(*) AS transition_count,
               sum(CASE WHEN o.predicted_regime = o.true_regime THEN 1 ELSE 0 END) AS transition_hits
        FROM o JOIN o AS prior
          ON prior.model = o.model AND prior.horizon = o.horizon AND prior.target_date = o.as_of
        WHERE o.true_regime IS NOT NULL AND o.predicted_regime IS NOT NULL AND prior.true_regime IS NOT NULL
          AND prior.predicted_regime IS NOT NULL AND prior.true_regime <> o.true_regime
        GROUP BY ALL ORDER BY ALL""", [ticker, version])


def audit_scored_probabilities(con: duckdb.DuckDBPyConnection, ticker: str, version: str) -> pl.DataFrame:
    """model, horizon, true_regime, probabilities of the scored rows (for the Brier recomputation)."""
    return query(con, f"""
        SELECT model, horizon, true_regime, probabilities FROM {_OOS}
        WHERE true_regime IS NOT NULL AND predicted_regime IS NOT NULL ORDER BY model, horizon, as_of""",
                 [ticker, version])


def audit_long_signals(con: duckdb.DuckDBPyConnection, ticker: str, version: str,
                       risk_off_override: int | None) -> pl.DataFrame:
    """model, horizon, as_of, long (1 unless the forecast is the fold's risk-off regime, or the override)."""
    return query(con, f"""
        SELECT o.model, o.horizon, o.as_of,
               CASE WHEN o.predicted_regime = coalesce(?, f.risk_off_regime) THEN 0 ELSE 1 END AS long
        FROM {_OOS} o
        LEFT JOIN (SELECT DISTINCT horizon, fold, risk_off_regime FROM {SCHEMA}.walk_forward_folds
                   WHERE ticker = ? AND targets_version = ?) f
          ON f.horizon = o.horizon AND f.fold = o.fold
        ORDER BY o.model, o.horizon, o.as_of""", [risk_off_override, ticker, version, ticker, version])


def audit_price_path(con: duckdb.DuckDBPyConnection, ticker: str, sma_window: int = 200,
                     vol_window: int = 20, cash_series: dict[str, int] | None = None,
                     stale_sessions: dict[int, int] | None = None) -> pl.DataFrame:
    """date, daily simple return of adj_close, whether the close is above its `sma_window`-session mean, the
    sample std of the `vol_window` daily log returns ending at the date (NULL until that many exist), and
    `cash_return`: what the flat part of a position earns over close d−1 → close d — the first of `cash_series`
    (series → values a year) stored in market.macro, its newest value usable at the close of d−1 while at most
    `stale_sessions[values a year]` sessions old, compounded to a session; 0 without one."""
    path = query(con, f"""
        WITH r AS (
            SELECT date, adj_close, adj_close / lag(adj_close) OVER w - 1 AS daily_return,
                   ln(adj_close / lag(adj_close) OVER w) AS log_return
            FROM {SCHEMA}.ohlcv WHERE ticker = ? WINDOW w AS (ORDER BY date))
        SELECT date, daily_return,
               CASE WHEN count(*) OVER s = ? AND adj_close > avg(adj_close) OVER s THEN 1 ELSE 0 END AS above_sma,
               CASE WHEN count(log_return) OVER v = ? THEN stddev_samp(log_return) OVER v END AS trailing_std
        FROM r
        WINDOW s AS (ORDER BY date ROWS BETWEEN {int(sma_window) - 1} PRECEDING AND CURRENT ROW),
               v AS (ORDER BY date ROWS BETWEEN {int(vol_window) - 1} PRECEDING AND CURRENT ROW)
        ORDER BY date""", [ticker, sma_window, vol_window])
    stored = set(query(con, f"SELECT DISTINCT series FROM {SCHEMA}.macro")["series"].to_list())
    series = next((name for name in (cash_series or {}) if name in stored), None)
    if series is None:
        return path.with_columns(cash_return=pl.lit(0.0))
    periods = cash_series[series]
    cash = query(con, f"""
        WITH p AS (SELECT date, row_number() OVER (ORDER BY date) - 1 AS i, lag(date) OVER (ORDER BY date) AS prev
                   FROM {SCHEMA}.ohlcv WHERE ticker = ?),
             c AS (SELECT usable_from, arg_max(value, date) AS value FROM {SCHEMA}.macro WHERE series = ?
                   GROUP BY usable_from),
             k AS (SELECT p.date, p.i, c.usable_from, c.value FROM p ASOF LEFT JOIN c ON p.prev >= c.usable_from),
             s AS (SELECT k.*, q.i AS i_usable FROM k ASOF LEFT JOIN p q ON k.usable_from <= q.date)
        SELECT date, CASE WHEN value IS NOT NULL AND (i - 1) - i_usable <= ?
                          THEN pow(1 + value / 100, ? / 252) - 1 ELSE 0 END AS cash_return
        FROM s ORDER BY date""", [ticker, series, (stale_sessions or {}).get(periods, 0), periods])
    return path.join(cash, on="date", how="left").with_columns(pl.col("cash_return").fill_null(0.0))
