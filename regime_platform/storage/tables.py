"""Every warehouse table, declared once: its columns (DuckDB and polars types) in contract order and its key.

The feature columns are declared here because they are the ``market.features`` table's contract (DESIGN §2);
:mod:`regime_platform.features` computes exactly these.
"""
from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

FEATURE_COLUMNS = [
    "ret_1d", "ret_5d", "ret_20d",
    "vol_5d", "vol_20d", "vol_60d", "vol_ratio_5_20", "vol_accel", "vol_z_252",
    "volume_z_20",
    "rsi_14",
    "macd", "macd_signal", "macd_hist", "macd_hist_pct",
    "bb_upper", "bb_mid", "bb_lower", "bb_pctb", "bb_width",
    "burst_up_5d", "burst_down_5d",
    "drawdown_252", "sma_ratio_200",
    "downside_dev_hl10", "downside_dev_hl21", "sortino_hl10", "sortino_hl21",
]

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

# The key columns every table below market.ohlcv leads with (DESIGN §2): the ticker, and for what the models and the
# evaluation write, the version of the targets it was scored against (labeler, horizon, hash of what shapes them).
TICKER = ("ticker", "VARCHAR NOT NULL", _TEXT)
TARGETS_VERSION = ("targets_version", "VARCHAR NOT NULL", _TEXT)
TICKER_KEY = ("ticker",)
VERSION_KEY = ("ticker", "targets_version")

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
        TICKER, ("date", "DATE NOT NULL", _DATE), ("regime", "INTEGER NOT NULL", _INT),
        ("known_regime", "INTEGER", _INT), ("regime_name", "VARCHAR", _TEXT), ("labeler", "VARCHAR NOT NULL", _TEXT),
        ("fit_start", "DATE", _DATE), ("fit_end", "DATE", _DATE)), "PRIMARY KEY (ticker, date)"),
    "oos_predictions": Table((
        TICKER, TARGETS_VERSION, ("model", "VARCHAR NOT NULL", _TEXT), ("fold", "INTEGER", _INT), ("as_of", "DATE NOT NULL", _DATE),
        ("target_date", "DATE NOT NULL", _DATE), ("horizon", "INTEGER NOT NULL", _INT),
        ("predicted_regime", "INTEGER", _INT), ("probabilities", "DOUBLE[]", pl.List(pl.Float64)),
        ("true_regime", "INTEGER", _INT), ("known_regime", "INTEGER", _INT))),
    # the walk-forward folds of one labeler and horizon, with each fold's refit labeler and risk-off regime
    "walk_forward_folds": Table((
        TICKER, TARGETS_VERSION, ("labeler", "VARCHAR NOT NULL", _TEXT), ("horizon", "INTEGER NOT NULL", _INT), ("fold", "INTEGER NOT NULL", _INT),
        ("test_year", "INTEGER", _INT), ("train_start", "DATE", _DATE), ("train_end", "DATE", _DATE),
        ("train_target_end", "DATE", _DATE), ("test_start", "DATE", _DATE), ("test_end", "DATE", _DATE),
        ("test_target_end", "DATE", _DATE), ("labeler_fit_start", "DATE", _DATE), ("labeler_fit_end", "DATE", _DATE),
        ("n_classes", "INTEGER", _INT), ("state_mapping", "VARCHAR", _TEXT),
        ("regime_mean_returns", "DOUBLE[]", pl.List(pl.Float64)), ("risk_off_regime", "INTEGER", _INT),
        # the test targets' labeler saw sessions up to here: the test span + REGIME_SETTLE_SESSIONS (truth only)
        ("truth_fit_end", "DATE", _DATE))),
    # every fold's targets: hindsight labels of the training span, of training + test span, and the causal ones
    "fold_labels": Table((
        TICKER, TARGETS_VERSION, ("labeler", "VARCHAR NOT NULL", _TEXT), ("horizon", "INTEGER NOT NULL", _INT), ("fold", "INTEGER NOT NULL", _INT),
        ("date", "DATE NOT NULL", _DATE), ("train_regime", "INTEGER", _INT), ("test_regime", "INTEGER", _INT),
        ("known_regime", "INTEGER", _INT))),
}


# what one model's walk-forward did in each fold (ranges, embargo, scaler, labeler, fit sizes: the record no_leakage
# verifies, as JSON), stored in the same transaction as that model's market.oos_predictions rows; walk_forward_digest =
# SHA-256 over the records and those rows, which the production model saved by the same run also records
TABLES["fold_records"] = Table((
    TICKER, TARGETS_VERSION, ("model", "VARCHAR NOT NULL", _TEXT), ("fold", "INTEGER NOT NULL", _INT),
    ("horizon", "INTEGER NOT NULL", _INT), ("record", "VARCHAR NOT NULL", _TEXT),
    ("walk_forward_digest", "VARCHAR NOT NULL", _TEXT)))
TABLES["model_metrics"] = Table((
    TICKER, TARGETS_VERSION, ("model", "VARCHAR NOT NULL", _TEXT), ("horizon", "INTEGER NOT NULL", _INT), ("fold", "INTEGER", _INT),
    ("metric", "VARCHAR NOT NULL", _TEXT), ("value", "DOUBLE", _DOUBLE)))
TABLES["backtest"] = Table((
    TICKER, TARGETS_VERSION, ("strategy", "VARCHAR NOT NULL", _TEXT), ("horizon", "INTEGER NOT NULL", _INT), ("start_date", "DATE", _DATE),
    ("end_date", "DATE", _DATE), ("ann_return", "DOUBLE", _DOUBLE), ("ann_vol", "DOUBLE", _DOUBLE),
    ("sharpe", "DOUBLE", _DOUBLE), ("max_drawdown", "DOUBLE", _DOUBLE), ("switches", "INTEGER", _INT),
    ("time_in_market", "DOUBLE", _DOUBLE),
    # 90 % block-bootstrap intervals (evaluation/intervals.py)
    *((f"{m}_{end}", "DOUBLE", _DOUBLE) for m in ("sharpe", "ann_return", "max_drawdown") for end in ("lo", "hi"))))
# each model against each baseline and rule, paired on the same resampled days (difference = model − baseline)
TABLES["baseline_comparison"] = Table((
    TICKER, TARGETS_VERSION, ("model", "VARCHAR NOT NULL", _TEXT), ("baseline", "VARCHAR NOT NULL", _TEXT),
    ("horizon", "INTEGER NOT NULL", _INT), ("metric", "VARCHAR NOT NULL", _TEXT), ("difference", "DOUBLE", _DOUBLE),
    ("ci_low", "DOUBLE", _DOUBLE), ("ci_high", "DOUBLE", _DOUBLE), ("share_below_zero", "DOUBLE", _DOUBLE)))
TABLES["regime_change_timing"] = Table((
    TICKER, TARGETS_VERSION, ("model", "VARCHAR NOT NULL", _TEXT), ("horizon", "INTEGER NOT NULL", _INT), ("change_date", "DATE NOT NULL", _DATE),
    ("from_regime", "INTEGER", _INT), ("to_regime", "INTEGER", _INT), ("first_call_date", "DATE", _DATE),
    ("first_lead_sessions", "INTEGER", _INT), ("call_date", "DATE", _DATE), ("lead_sessions", "INTEGER", _INT),
    ("flipped_back", "BOOLEAN", pl.Boolean)))
# FRED / Fama–French series (DESIGN §2, §3a): usable_from = the first session at whose close the value may be used;
# filled_from = the date a short gap's value was carried from (NULL for an observed value).
TABLES["macro"] = Table((
    ("date", "DATE NOT NULL", _DATE), ("series", "VARCHAR NOT NULL", _TEXT), ("value", "DOUBLE NOT NULL", _DOUBLE),
    ("usable_from", "DATE NOT NULL", _DATE), ("filled_from", "DATE", _DATE), ("source", "VARCHAR NOT NULL", _TEXT),
    ("ingested_at", "TIMESTAMP NOT NULL", pl.Datetime("us"))), "PRIMARY KEY (series, date)")
TABLES["regime_forecasts"] = Table((
    TICKER, ("as_of", "DATE NOT NULL", _DATE), ("target_date", "DATE NOT NULL", _DATE), ("horizon", "INTEGER NOT NULL", _INT),
    ("model", "VARCHAR NOT NULL", _TEXT), ("predicted_regime", "INTEGER NOT NULL", _INT),
    ("probabilities", "DOUBLE[] NOT NULL", pl.List(pl.Float64)), ("model_version", "VARCHAR NOT NULL", _TEXT),
    ("price_source", "VARCHAR", _TEXT), ("status", "VARCHAR NOT NULL", _TEXT), ("realized_regime", "INTEGER", _INT),
    ("labels_version", "VARCHAR", _TEXT), ("known_regime", "INTEGER", _INT), ("known_labels_version", "VARCHAR", _TEXT),
    ("decision_note", "VARCHAR", _TEXT)), "PRIMARY KEY (ticker, as_of, model, horizon)")
# known_regime / known_labels_version: the non-price input each row was made from — the regime known after the close
# of as_of and the version of the labels (fit through as_of, or a user's file read up to as_of − lag) it came from;
# labels_version: the labels that scored the row. decision_note: how the minimum-dwell rule was applied (continued
# from the stored rows of the previous sessions, or restarted and why); NULL for a plain argmax.
TABLES["feature_attributions"] = Table((
    TICKER, TARGETS_VERSION, ("model", "VARCHAR NOT NULL", _TEXT), ("method", "VARCHAR NOT NULL", _TEXT), ("regime", "INTEGER", _INT),
    ("feature", "VARCHAR", _TEXT), ("lag", "INTEGER", _INT), ("value", "DOUBLE", _DOUBLE),
    ("spread", "DOUBLE", _DOUBLE), ("windows", "INTEGER", _INT)))
# regime NULL = all windows; lag NULL = the method does not resolve time; feature '(all features)' = the
# method does not resolve features; spread = std over permutation repeats (NULL for captum methods).
TABLES["regime_profiles"] = Table((
    TICKER, ("scope", "VARCHAR NOT NULL", _TEXT), ("fold", "INTEGER", _INT), ("fit_start", "DATE", _DATE),
    ("fit_end", "DATE", _DATE), ("regime", "INTEGER NOT NULL", _INT), ("statistic", "VARCHAR NOT NULL", _TEXT),
    ("value", "DOUBLE", _DOUBLE)))
# scope 'stored' = the stored labels (fold NULL); 'refit' = the labeler refit on a walk-forward fold's
# training span (fold, fit_start, fit_end set). Long: a new statistic is a new row.


def schema(table: str) -> dict[str, pl.DataType]:
    """The polars schema of ``table`` (column order = the contract's)."""
    return TABLES[table].schema


def key_columns(table: str) -> tuple[str, ...]:
    """The scope columns ``table`` leads with: ("ticker",), ("ticker", "targets_version") or () for ohlcv/features,
    whose ticker is an ordinary column of each row."""
    names = [name for name, _, _ in TABLES[table].columns[:2]]
    return tuple(n for n in names if n in VERSION_KEY) if names[0] == "ticker" else ()


def body_schema(table: str) -> dict[str, pl.DataType]:
    """``table``'s columns without its scope keys: what the domain code computes (storage adds the keys)."""
    keys = key_columns(table)
    return {name: dtype for name, dtype in schema(table).items() if name not in keys}


def with_scope(table: str, frame: pl.DataFrame, scope: dict[str, str]) -> pl.DataFrame:
    """``frame`` with ``table``'s scope key columns set to ``scope``, in contract column order (refuses a frame
    that carries other values in a key column, so a row can never be filed under another ticker or version)."""
    keys = key_columns(table)
    if set(scope) != set(keys):
        raise ValueError(f"market.{table} is keyed by {', '.join(keys)}; got {', '.join(scope) or 'nothing'}.")
    for key, value in scope.items():
        if key in frame.columns and frame[key].n_unique() and set(frame[key].unique().to_list()) != {value}:
            raise ValueError(f"rows for market.{table} carry {key} values other than {value!r}; nothing was written.")
    out = frame.with_columns(*(pl.lit(v, dtype=pl.String).alias(k) for k, v in scope.items()))
    return out.select([c for c in schema(table) if c in out.columns])


def ensure_schema(con: duckdb.DuckDBPyConnection, tables: list[str] | None = None) -> None:
    """Create the schema and the tables that are missing (nothing is issued when all exist, so a read-only
    connection — the CLI's — reads a complete warehouse)."""
    wanted = tables or list(TABLES)
    present = {name for (name,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [SCHEMA]).fetchall()}
    missing = [name for name in wanted if name not in present]
    if not missing:
        return
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for name in missing:
        con.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{name} ({TABLES[name].ddl()})")


LEDGER_SCHEMA = schema("regime_forecasts")
