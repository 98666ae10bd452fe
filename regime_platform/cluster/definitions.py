"""The same definitions on a cluster: the Kubernetes executor, a shared warehouse, and tickers as a second
partition dimension. docs/scaling.md explains it; regime_platform_tests/cluster/test_definitions.py loads and validates it.

Load it instead of regime_platform.definitions (`dagster dev -m regime_platform.cluster.definitions`, or the
code location of a Helm deployment). No asset code changes: only the executor, the warehouse resource's
database and the multi-ticker ingestion asset differ. Needs the `cluster` extra (dagster-k8s).
"""

import datetime as dt
import os

import dagster as dg
from dagster_duckdb import DuckDBResource

# Not imported lazily: loading this code location calls defs(), which needs the executor, so deferring the import
# would only postpone the failure; without the extra, say which one at import.
try:
    from dagster_k8s import k8s_job_executor
except ImportError as exc:
    raise ImportError("regime_platform.cluster needs dagster-k8s: pip install -e '.[cluster]' (docs/scaling.md)") from exc

from regime_platform import definitions as single_machine
from regime_platform.defs.ingestion.assets import ingest_bars
from regime_platform.defs.partitions import session_partitions
from regime_platform.defs.resources import RegimeSettings, Warehouse, default_resources

TICKERS = [t.strip() for t in os.environ.get("REGIME_TICKERS", "SPY,QQQ,IWM").split(",") if t.strip()]

# Each step of a run becomes its own Kubernetes Job (pod); the duckdb pool still serializes writers to one file,
# so with a server database (or MotherDuck) raise the pool limit in dagster.yaml.
K8S_EXECUTOR_CONFIG = {
    "job_namespace": os.environ.get("REGIME_K8S_NAMESPACE", "regime-platform"),
    "image_pull_policy": "IfNotPresent",
    "max_concurrent": 4,
    "env_secrets": ["regime-platform-env"],  # MOTHERDUCK_TOKEN, STOOQ_API_KEY …
    "step_k8s_config": {"container_config": {"resources": {
        "requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}}},
}


def cluster_executor() -> dg.ExecutorDefinition:
    return k8s_job_executor.configured(K8S_EXECUTOR_CONFIG, name="k8s_regime")


# date × ticker: one partition per (XNYS session, ticker). Ingestion fetches one ticker per key; a backfill of a
# ticker's history is still one run per ticker (single-run policy over the date dimension).
ticker_session_partitions = dg.MultiPartitionsDefinition(
    {"date": session_partitions, "ticker": dg.StaticPartitionsDefinition(TICKERS)})


@dg.asset(
    name="ohlcv_by_ticker", group_name="ingestion", partitions_def=ticker_session_partitions, pool="duckdb",
    kinds={"duckdb"},
    description="Daily bars per (session, ticker) into market.ohlcv: the multi-ticker form of `ohlcv` — the same "
                "ingestion (chain-linking, vendor revisions into market.ohlcv_revisions, the sample warning), the "
                "ticker taken from the partition key instead of REGIME_TICKER.",
)
def ohlcv_by_ticker(context: dg.AssetExecutionContext, warehouse: Warehouse,
                    settings: RegimeSettings) -> dg.MaterializeResult:
    keys = context.partition_key.keys_by_dimension
    day, ticker = dt.date.fromisoformat(keys["date"]), keys["ticker"]
    metadata = ingest_bars(context.log, warehouse, settings, ticker, day, day)
    return dg.MaterializeResult(metadata={"ticker": ticker, "session": str(day), **metadata})


def cluster_resources() -> dict:
    """The warehouse on MotherDuck (`md:<db>`, token from MOTHERDUCK_TOKEN) or any DuckDB path in
    REGIME_WAREHOUSE_DATABASE; the artifacts on a shared volume in REGIME_DATA_DIR."""
    resources = default_resources()
    database = os.environ.get("REGIME_WAREHOUSE_DATABASE", "md:regime_platform")
    resources["warehouse"] = Warehouse(duckdb=DuckDBResource(database=database))
    return resources


@dg.definitions
def defs() -> dg.Definitions:
    base = single_machine.defs()
    return dg.Definitions(
        assets=[*(base.assets or []), ohlcv_by_ticker], asset_checks=base.asset_checks, jobs=base.jobs,
        schedules=base.schedules, sensors=base.sensors, resources={**(base.resources or {}), **cluster_resources()},
        executor=cluster_executor(),
    )
