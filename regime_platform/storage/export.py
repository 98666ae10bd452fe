"""`regime-platform export DIR`: the ledger and the walk-forward out-of-sample rows as Parquet and CSV files.

DuckDB's `COPY … TO` writes each file (to a temporary name, then renamed: a reader never sees half a file); every row
carries its ticker, horizon, price source and the full probability vector (a list in Parquet, `[p0, p1, …]` in
CSV)."""
from __future__ import annotations

from pathlib import Path

import duckdb

from regime_platform.storage.db import table_exists
from regime_platform.storage.files import atomic_path
from regime_platform.storage.tables import SCHEMA

# name → the SELECT it exports (the oos rows gain the price source of their as_of session from market.ohlcv)
EXPORTS = {
    "regime_forecasts": f"SELECT * FROM {SCHEMA}.regime_forecasts ORDER BY ticker, as_of, horizon, model",
    "oos_predictions": (f"SELECT p.*, o.source AS price_source FROM {SCHEMA}.oos_predictions p LEFT JOIN "
                        f"{SCHEMA}.ohlcv o ON o.ticker = p.ticker AND o.date = p.as_of "
                        "ORDER BY p.ticker, p.targets_version, p.horizon, p.model, p.as_of"),
}
FORMATS = {"parquet": "(FORMAT parquet)", "csv": "(FORMAT csv, HEADER true)"}


def export_tables(con: duckdb.DuckDBPyConnection, directory: Path) -> list[tuple[Path, int]]:
    """Write ``<name>.parquet`` and ``<name>.csv`` of each export into ``directory``; returns (file, rows) of each.
    A table the warehouse does not hold yet is skipped (its files are not written)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, select in EXPORTS.items():
        if not table_exists(con, name):
            continue
        rows = int(con.execute(f"SELECT count(*) FROM ({select})").fetchone()[0])
        for extension, options in FORMATS.items():
            target = directory / f"{name}.{extension}"
            with atomic_path(target) as tmp:
                con.execute(f"COPY ({select}) TO '{_quoted(tmp)}' {options}")
            written.append((target, rows))
    return written


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
