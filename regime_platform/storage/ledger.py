"""Named queries of the forecast ledger (market.regime_forecasts): the daily forecasts, their scoring, and the
reads the scoreboard, the CLI and the daily asset need. The math lives in regime_platform/forecasting/; only SQL
here. The ledger holds every ticker's rows; each write and each read of one ticker's inputs is scoped to it."""
from __future__ import annotations

import duckdb
import polars as pl

from regime_platform.storage.db import query, replace_scoped, table_exists, transaction
from regime_platform.storage.tables import LEDGER_SCHEMA, SCHEMA


def ledger_inputs(con: duckdb.DuckDBPyConnection, ticker: str, as_of, sessions: int) -> tuple[pl.DataFrame, str | None]:
    """The last `sessions` feature rows of ``ticker`` up to `as_of` and the price source of `as_of` (None when its
    close is not stored)."""
    features = con.execute(
        "SELECT * FROM (SELECT * FROM market.features WHERE ticker = ? AND date <= ? ORDER BY date DESC LIMIT ?) "
        "ORDER BY date", [ticker, as_of, sessions]).pl()
    source = con.execute("SELECT source FROM market.ohlcv WHERE ticker = ? AND date = ? AND close IS NOT NULL",
                         [ticker, as_of]).fetchone()
    return features, (source[0] if source else None)


def write_forecasts(con: duckdb.DuckDBPyConnection, ticker: str, as_of, rows: pl.DataFrame) -> int:
    """Replace ``ticker``'s ledger rows of session `as_of` with `rows`, in one transaction (other tickers' rows of
    the session are not touched)."""
    return replace_scoped(con, "regime_forecasts", rows.drop("ticker", strict=False), {"ticker": ticker},
                          "as_of = ?", [as_of])


def recent_forecasts(con: duckdb.DuckDBPyConnection, ticker: str, model: str, horizon: int, before,
                     n: int) -> pl.DataFrame:
    """The ledger's last ``n`` rows of one ticker, model and horizon made before session ``before`` (as_of-ordered):
    what the decision rule needs to continue from (predicted_regime, probabilities)."""
    return con.execute(
        "SELECT * FROM (SELECT as_of, predicted_regime, probabilities FROM market.regime_forecasts "
        "WHERE ticker = ? AND model = ? AND horizon = ? AND as_of < ? ORDER BY as_of DESC LIMIT ?) ORDER BY as_of",
        [ticker, model, horizon, before, n]).pl()


def pending_forecasts(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    return con.execute("SELECT ticker, as_of, model, horizon, target_date FROM market.regime_forecasts "
                       "WHERE ticker = ? AND status = 'pending' ORDER BY as_of, model", [ticker]).pl()


def ledger_tickers(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every ticker the ledger holds rows of."""
    if not table_exists(con, "regime_forecasts"):
        return []
    return [r[0] for r in con.execute("SELECT DISTINCT ticker FROM market.regime_forecasts ORDER BY 1").fetchall()]


def labels_for_scoring(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    if not table_exists(con, "regime_labels"):
        return pl.DataFrame(schema={"date": pl.Date, "regime": pl.Int32, "labeler": pl.Utf8})
    return con.execute("SELECT date, regime, labeler FROM market.regime_labels WHERE ticker = ? ORDER BY date",
                       [ticker]).pl()


def apply_scores(con: duckdb.DuckDBPyConnection, scored: pl.DataFrame) -> int:
    """Mark pending rows `scored` with their realized regime and labels version, in one transaction."""
    if scored.is_empty():
        return 0
    with transaction(con):
        con.register("_scores", scored.to_arrow())
        try:
            con.execute(
                "UPDATE market.regime_forecasts f SET status = 'scored', realized_regime = s.realized_regime, "
                "labels_version = s.labels_version FROM _scores s WHERE f.ticker = s.ticker AND f.as_of = s.as_of "
                "AND f.model = s.model AND f.horizon = s.horizon AND f.status = 'pending'")
        finally:
            con.unregister("_scores")
    return scored.height


def ledger_counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(pending rows, all rows) of the ledger, every ticker."""
    row = query(con, f"SELECT count(*) FILTER (WHERE status = 'pending') AS pending, count(*) AS total "
                     f"FROM {SCHEMA}.regime_forecasts")
    return int(row["pending"][0]), int(row["total"][0])


def read_ledger(con: duckdb.DuckDBPyConnection, ticker: str | None = None) -> pl.DataFrame:
    """The ledger (of ``ticker``, or of every ticker), in (ticker, as_of, model) order."""
    if not table_exists(con, "regime_forecasts"):
        return pl.DataFrame(schema=LEDGER_SCHEMA)
    where, params = ("WHERE ticker = ? ", [ticker]) if ticker else ("", [])
    return con.execute(f"SELECT * FROM market.regime_forecasts {where}ORDER BY ticker, as_of, model", params).pl()


def read_oos_pooled(con: duckdb.DuckDBPyConnection, versions: dict[str, str]) -> pl.DataFrame:
    """Every walk-forward out-of-sample prediction with a known outcome, of each ticker's current targets version
    (``versions``: ticker → version); the scoreboard pools them per ticker and model, never across versions."""
    empty = pl.DataFrame(schema={"ticker": pl.Utf8, "model": pl.Utf8, "horizon": pl.Int32,
                                 "predicted_regime": pl.Int32, "probabilities": pl.List(pl.Float64),
                                 "true_regime": pl.Int32})
    if not table_exists(con, "oos_predictions") or not versions:
        return empty
    frames = [con.execute("SELECT ticker, model, horizon, predicted_regime, probabilities, true_regime "
                          "FROM market.oos_predictions WHERE ticker = ? AND targets_version = ? "
                          "AND true_regime IS NOT NULL", [t, v]).pl() for t, v in sorted(versions.items())]
    return pl.concat([empty, *frames], how="vertical_relaxed")


def stored_regime_names(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    """Each (regime, regime_name) of ``ticker``'s stored labels, once (``labels.names_by_id`` makes the lookup)."""
    if not table_exists(con, "regime_labels"):
        return pl.DataFrame(schema={"regime": pl.Int32, "regime_name": pl.Utf8})
    return con.execute("SELECT DISTINCT regime, regime_name FROM market.regime_labels WHERE ticker = ? "
                       "ORDER BY regime", [ticker]).pl()


def freshest_dates(con: duckdb.DuckDBPyConnection, ticker: str) -> dict[str, object]:
    """The newest stored date of each dated table for ``ticker`` (None when the table is absent or empty)."""
    out: dict[str, object] = {}
    for table, column in (("ohlcv", "date"), ("features", "date"), ("regime_labels", "date"),
                          ("oos_predictions", "as_of"), ("regime_forecasts", "as_of")):
        if not table_exists(con, table):
            out[table] = None
            continue
        out[table] = con.execute(f"SELECT max({column}) FROM {SCHEMA}.{table} WHERE ticker = ?", [ticker]).fetchone()[0]
    return out
