"""Named queries of the explainability tables: feature attributions and regime profiles."""
from __future__ import annotations

import duckdb
import polars as pl

from regime_platform.storage.db import query, replace_rows

# ================================================================================================
# explainability: feature attributions and regime profiles (regime_platform/defs/explainability/)
# ================================================================================================



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
