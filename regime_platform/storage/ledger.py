"""Named queries of the forecast ledger (market.regime_forecasts): the daily forecasts, their scoring, and the
reads the scoreboard, the CLI and the daily asset need. The math lives in regime_platform/forecasting/."""
from __future__ import annotations

import duckdb
import polars as pl

from regime_platform.storage.db import query, replace_rows, table_exists, transaction
from regime_platform.storage.tables import LEDGER_SCHEMA, SCHEMA

# ==============================================================================================================
# forecast ledger (market.regime_forecasts): the daily forecasts, their scoring, and the reads the scoreboard,
# the CLI and the daily asset need. The math lives in regime_platform/ledger.py; only SQL here.
# ==============================================================================================================



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
        return pl.DataFrame(schema=LEDGER_SCHEMA)
    return con.execute("SELECT * FROM market.regime_forecasts ORDER BY as_of, model").pl()


def read_oos_pooled(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every walk-forward out-of-sample prediction with a known outcome (the scoreboard pools them per model)."""
    if not table_exists(con, "oos_predictions"):
        return pl.DataFrame(schema={"model": pl.Utf8, "horizon": pl.Int32, "predicted_regime": pl.Int32,
                                    "probabilities": pl.List(pl.Float64), "true_regime": pl.Int32})
    return con.execute("SELECT model, horizon, predicted_regime, probabilities, true_regime "
                       "FROM market.oos_predictions WHERE true_regime IS NOT NULL").pl()


def stored_regime_names(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Each (regime, regime_name) of the stored labels, once (``labels.names_by_id`` makes the lookup)."""
    if not table_exists(con, "regime_labels"):
        return pl.DataFrame(schema={"regime": pl.Int32, "regime_name": pl.Utf8})
    return con.execute("SELECT DISTINCT regime, regime_name FROM market.regime_labels ORDER BY regime").pl()


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
