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
    """The warehouse, settings (the bundled sample unless ``settings`` say otherwise) and artifact IO manager on data dir ``root``."""
    from dagster_duckdb import DuckDBResource

    from regime_platform.defs.resources import ArtifactIOManager, RegimeSettings, Warehouse

    return {
        "warehouse": Warehouse(duckdb=DuckDBResource(database=str(root / "warehouse.duckdb"))),
        "settings": RegimeSettings(**{"data_dir": str(root), "source": "sample", **settings}),
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


def ticker_instance(*tickers: str, instance=None):
    """A Dagster instance (ephemeral unless given) with ``tickers`` registered as ticker partitions."""
    import dagster as dg

    from regime_platform.defs.partitions import ticker_partitions

    instance = instance or dg.DagsterInstance.ephemeral()
    known = set(instance.get_dynamic_partitions(ticker_partitions.name))
    new = [t for t in tickers if t not in known]
    if new:
        instance.add_dynamic_partitions(ticker_partitions.name, new)
    return instance


def materialize_ticker(assets, resources, ticker: str = "SPY", instance=None, **kwargs):
    """``dg.materialize`` of per-ticker assets (and their checks) for the partition ``ticker``."""
    import dagster as dg

    return dg.materialize(assets, resources=resources, partition_key=ticker,
                          instance=ticker_instance(ticker, instance=instance), **kwargs)


def check_ticker(assets, checks, resources, ticker: str = "SPY", instance=None, run_config=None):
    """Only ``checks`` of per-ticker ``assets``, for the partition ``ticker`` (``dg.materialize`` cannot select checks
    alone with a partition key: it finds no partitions definition among the selected assets, so the partition
    goes in as the run's tag)."""
    import dagster as dg

    from regime_platform.defs.partitions import ticker_partitions

    job = dg.define_asset_job("checks_only", selection=dg.AssetSelection.checks(*checks),
                              partitions_def=ticker_partitions)
    defs = dg.Definitions(assets=assets, asset_checks=checks, jobs=[job], resources=resources)
    return defs.resolve_job_def("checks_only").execute_in_process(
        tags={"dagster/partition": ticker}, instance=ticker_instance(ticker, instance=instance), raise_on_error=False,
        run_config=run_config)


def load_artifact(root, asset: str, ticker: str = "SPY"):
    """What a downstream per-ticker asset receives for ``asset``'s ``ticker`` partition from the artifact IO manager."""
    import dagster as dg

    from regime_platform.defs.partitions import ticker_partitions
    from regime_platform.defs.resources import ArtifactIOManager

    instance = ticker_instance(ticker)
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        context = dg.build_input_context(asset_key=dg.AssetKey(asset), partition_key=ticker, instance=instance,
                                         asset_partitions_def=ticker_partitions,
                                         asset_partition_key_range=dg.PartitionKeyRange(ticker, ticker))
        return ArtifactIOManager(base_dir=str(root / "artifacts")).load_input(context)
