"""Named queries of the explainability tables: feature attributions and regime profiles, per ticker (and, for
attributions, per targets version)."""
from __future__ import annotations

import duckdb
import polars as pl

from regime_platform.storage.db import query, read_scoped, replace_scoped


def explanation_sessions(con: duckdb.DuckDBPyConnection, ticker: str) -> pl.DataFrame:
    """Every session's features and adjusted close with ``ticker``'s stored label (NULL where none), in date order."""
    return query(con, """
        SELECT f.*, o.adj_close, l.regime, l.known_regime, l.regime_name, l.labeler
        FROM market.features f JOIN market.ohlcv o USING (ticker, date)
        LEFT JOIN market.regime_labels l USING (ticker, date)
        WHERE f.ticker = ? ORDER BY date""", [ticker])


def replace_feature_attributions(con: duckdb.DuckDBPyConnection, ticker: str, version: str, rows: pl.DataFrame) -> int:
    """Replace the attribution rows of the (model, method) pairs present in ``rows`` for one ticker and targets
    version, in one transaction."""
    pairs = rows.select("model", "method").unique().sort("model", "method")
    where = " OR ".join(["(model = ? AND method = ?)"] * pairs.height)
    params = [v for pair in pairs.iter_rows() for v in pair]
    return replace_scoped(con, "feature_attributions", rows, {"ticker": ticker, "targets_version": version},
                          where, params)


def read_feature_attributions(con: duckdb.DuckDBPyConnection, ticker: str, version: str) -> pl.DataFrame:
    return read_scoped(con, "feature_attributions", {"ticker": ticker, "targets_version": version},
                       order="model, method, regime, feature, lag")


def replace_regime_profiles(con: duckdb.DuckDBPyConnection, ticker: str, rows: pl.DataFrame) -> int:
    """Replace ``ticker``'s regime profile rows (stored labels and refits) in one transaction."""
    return replace_scoped(con, "regime_profiles", rows, {"ticker": ticker})
