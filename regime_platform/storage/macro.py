"""Named queries of market.macro: the series rows the `macro` asset writes and the features and backtest read."""
from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from regime_platform.storage.db import insert, query, transaction
from regime_platform.storage.tables import SCHEMA, ensure_schema, schema


def write_macro(con: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date, series: dict[str, pl.DataFrame]) -> None:
    """Replace each series' rows dated start … end with ``series[name]``, all series in one transaction; a series not
    in ``series`` (one no source could serve) keeps what is stored."""
    empty = [name for name, rows in series.items() if rows.is_empty()]
    if not series or empty:
        raise ValueError(f"refusing to replace {SCHEMA}.macro {start} … {end} of {', '.join(empty) or 'no series'} "
                         "with no rows; nothing was changed.")
    ensure_schema(con, ["macro"])
    with transaction(con):
        for name, rows in series.items():
            outside = rows.filter(~pl.col("date").is_between(start, end))
            if outside.height:
                raise ValueError(f"rows of {name} dated {outside['date'][0]} lie outside {start} … {end}; nothing was "
                                 "changed.")
            con.execute(f"DELETE FROM {SCHEMA}.macro WHERE series = ? AND date BETWEEN ? AND ?", [name, start, end])
            insert(con, "macro", rows.select(list(schema("macro"))))


def read_macro(con: duckdb.DuckDBPyConnection, series: list[str] | None = None) -> pl.DataFrame:
    """Stored macro rows (of ``series`` when given), by series and date."""
    where, params = ("WHERE series IN (SELECT unnest(?))", [list(series)]) if series else ("", [])
    return query(con, f"SELECT * FROM {SCHEMA}.macro {where} ORDER BY series, date", params)


def macro_summary(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Per stored series: rows, first and last date, carried rows and the sources that served it."""
    return query(con, f"SELECT series, count(*) AS rows, min(date) AS first_date, max(date) AS last_date, "
                      f"count(filled_from) AS carried, string_agg(DISTINCT source, ', ') AS source FROM {SCHEMA}.macro "
                      "GROUP BY series ORDER BY series")
