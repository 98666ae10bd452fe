"""Shared fixtures: real sample prices, a throwaway data dir, Dagster resources pointing at it."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl
import pytest

# Definitions load with the default REGIME_START; tests must never touch the user's ./data.
os.environ.setdefault("REGIME_DATA_DIR", str(Path(__file__).parent / ".unused_data_dir"))


def pytest_collection_modifyitems(config, items):
    if os.environ.get("REGIME_NETWORK_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="needs the internet: set REGIME_NETWORK_TESTS=1")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sample_bars() -> pl.DataFrame:
    """The bundled S&P 500 sample, normalized like every source's output."""
    from regime_platform.ingestion.sources import SampleSource

    return SampleSource().fetch("SPY", dt.date(1999, 1, 4), dt.date(2018, 12, 31))


@pytest.fixture
def resources(tmp_path):
    from dagster_duckdb import DuckDBResource

    from regime_platform.defs.resources import RegimeSettings, Warehouse

    return {
        "warehouse": Warehouse(duckdb=DuckDBResource(database=str(tmp_path / "warehouse.duckdb"))),
        "settings": RegimeSettings(data_dir=str(tmp_path), source="sample"),
    }


def platform_resources(root, **settings):
    """The warehouse, settings (the bundled sample, plus ``settings``) and artifact IO manager on data dir ``root``."""
    from dagster_duckdb import DuckDBResource

    from regime_platform.defs.resources import ArtifactIOManager, RegimeSettings, Warehouse

    return {
        "warehouse": Warehouse(duckdb=DuckDBResource(database=str(root / "warehouse.duckdb"))),
        "settings": RegimeSettings(data_dir=str(root), source="sample", **settings),
        "artifacts": ArtifactIOManager(base_dir=str(root / "artifacts")),
    }


def read_table(resources, sql: str, params=None) -> pl.DataFrame:
    return resources["warehouse"].read(sql, params)


def weekdays(start: dt.date, n: int) -> list[dt.date]:
    """n consecutive weekdays from `start`: a quick stand-in calendar for the modeling unit tests."""
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out
