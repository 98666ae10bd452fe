"""Named queries of the forecast ledger (market.regime_forecasts): the daily forecasts, their scoring, and the
reads the scoreboard, the CLI and the daily asset need. The math lives in regime_platform/forecasting/; only SQL
here. The ledger holds every ticker's rows; each write and each read of one ticker's inputs is scoped to it."""
from __future__ import annotations

import duckdb
import polars as pl

from regime_platform.storage.db import insert, query, table_exists, transaction
from regime_platform.storage.tables import LEDGER_SCHEMA, SCHEMA, ensure_schema, with_scope


def ledger_inputs(con: duckdb.DuckDBPyConnection, ticker: str, as_of, sessions: int) -> tuple[pl.DataFrame, str | None]:
    """The last `sessions` feature rows of ``ticker`` up to `as_of` and the price source of `as_of` (None when its
    close is not stored)."""
    features = con.execute(
        "SELECT * FROM (SELECT * FROM market.features WHERE ticker = ? AND date <= ? ORDER BY date DESC LIMIT ?) "
        "ORDER BY date", [ticker, as_of, sessions]).pl()
    source = con.execute("SELECT source FROM market.ohlcv WHERE ticker = ? AND date = ? AND close IS NOT NULL",
                         [ticker, as_of]).fetchone()
    return features, (source[0] if source else None)


def write_forecasts(con: duckdb.DuckDBPyConnection, ticker: str, as_of, rows: pl.DataFrame) -> pl.DataFrame:
    """Write ``ticker``'s ledger `rows` of session `as_of`, replacing exactly the stored rows of the same (ticker,
    as_of, horizon, model) that are still pending, in one transaction. A scored row is never rewritten or deleted:
    its new row is dropped. Returns the keys (model, horizon, status) of the stored rows that were kept."""
    if rows.is_empty():
        raise ValueError(f"refusing to write an empty set of ledger rows for {ticker} {as_of}; nothing was changed.")
    ensure_schema(con, ["regime_forecasts"])
    keys = rows.select("model", "horizon").unique()
    con.register("_keys", keys.to_arrow())
    try:
        with transaction(con):
            kept = con.execute(
                "SELECT f.model, f.horizon, f.status FROM market.regime_forecasts f JOIN _keys k USING (model, horizon) "
                "WHERE f.ticker = ? AND f.as_of = ? AND f.status <> 'pending' ORDER BY f.model, f.horizon",
                [ticker, as_of]).pl()
            con.execute("DELETE FROM market.regime_forecasts f USING _keys k WHERE f.ticker = ? AND f.as_of = ? "
                        "AND f.model = k.model AND f.horizon = k.horizon AND f.status = 'pending'", [ticker, as_of])
            fresh = rows.join(kept.select("model", "horizon"), on=["model", "horizon"], how="anti")
            if fresh.height:
                insert(con, "regime_forecasts", with_scope("regime_forecasts", fresh.filter(pl.col("as_of") == as_of),
                                                           {"ticker": ticker}))
    finally:
        con.unregister("_keys")
    return kept


def recent_forecasts(con: duckdb.DuckDBPyConnection, ticker: str, model: str, horizon: int, before,
                     n: int) -> pl.DataFrame:
    """The ledger's last ``n`` rows of one ticker, model and horizon made before session ``before`` (as_of-ordered):
    what the decision rule needs to continue from (as_of, predicted_regime, probabilities, known_regime,
    model_version)."""
    return con.execute(
        "SELECT * FROM (SELECT as_of, predicted_regime, probabilities, known_regime, model_version "
        "FROM market.regime_forecasts "
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


def headline_inputs(con: duckdb.DuckDBPyConnection, ticker: str) -> dict[str, pl.DataFrame]:
    """What today's one-line answer of ``ticker`` reads: its ledger rows, the regime known at each labelled session
    (date, known_regime), its labels (date, regime, regime_name) and prices (date, adj_close)."""
    labels = (con.execute("SELECT date, regime, known_regime, regime_name FROM market.regime_labels WHERE ticker = ? "
                          "ORDER BY date", [ticker]).pl() if table_exists(con, "regime_labels")
              else pl.DataFrame(schema={"date": pl.Date, "regime": pl.Int32, "known_regime": pl.Int32,
                                        "regime_name": pl.Utf8}))
    prices = (con.execute("SELECT date, adj_close FROM market.ohlcv WHERE ticker = ? ORDER BY date", [ticker]).pl()
              if table_exists(con, "ohlcv") else pl.DataFrame(schema={"date": pl.Date, "adj_close": pl.Float64}))
    return {"ledger": read_ledger(con, ticker), "labels": labels, "prices": prices}


def headline_oos(con: duckdb.DuckDBPyConnection, ticker: str, targets_version: str, model: str, horizon: int,
                 since) -> pl.DataFrame:
    """The walk-forward out-of-sample forecasts of one model from ``since`` on (as_of, predicted_regime,
    probabilities): what the page's plot draws before the ledger begins."""
    if not table_exists(con, "oos_predictions"):
        return pl.DataFrame(schema={"as_of": pl.Date, "predicted_regime": pl.Int32, "probabilities": pl.List(pl.Float64)})
    return con.execute("SELECT as_of, predicted_regime, probabilities FROM market.oos_predictions WHERE ticker = ? "
                       "AND targets_version = ? AND model = ? AND horizon = ? AND as_of >= ? ORDER BY as_of",
                       [ticker, targets_version, model, horizon, since]).pl()
