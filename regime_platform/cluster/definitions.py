"""The same definitions on a cluster: the Kubernetes executor and a warehouse that takes concurrent writers.
docs/scaling.md explains it; regime_platform_tests/cluster/test_definitions.py loads and validates it.

Load it instead of regime_platform.definitions (`dagster dev -m regime_platform.cluster.definitions`, or the code
location of a Helm deployment). Everything else is the single-machine definitions, unchanged: the same assets,
checks, jobs, schedules and sensors, and the same partitions — the daily assets (ohlcv, features, the ledger) one
partition per XNYS session holding every ticker, the per-ticker assets one dynamic partition per ticker. What fans out
is runs: `weekly_retrain_schedule` asks for one `weekly_retrain_job` run per ticker, the run queue launches them side
by side, and the executor puts each step of each run in its own pod. The instance the webserver and daemon use
(Postgres storage, the `duckdb` pool limit, the run queue) is configured by docs/cluster/dagster.yaml.
Needs the `cluster` extra (dagster-k8s).
"""

import contextlib
import os
from typing import Optional

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

# Not imported lazily: loading this code location calls defs(), which needs the executor, so deferring the import
# would only postpone the failure; without the extra, say which one at import.
try:
    from dagster_k8s import k8s_job_executor
except ImportError as exc:
    raise ImportError("regime_platform.cluster needs dagster-k8s: pip install -e '.[cluster]' (docs/scaling.md)") from exc

from regime_platform import definitions as single_machine
from regime_platform.defs.resources import Warehouse, default_resources

# Each step of a run becomes its own Kubernetes Job (pod). Steps of one run that share the `duckdb` pool still wait
# for a slot of the pool, whose limit the instance sets (docs/cluster/dagster.yaml).
K8S_EXECUTOR_CONFIG = {
    "job_namespace": os.environ.get("REGIME_K8S_NAMESPACE", "regime-platform"),
    "image_pull_policy": "IfNotPresent",
    "max_concurrent": 4,
    "env_secrets": ["regime-platform-env"],  # MOTHERDUCK_TOKEN, STOOQ_API_KEY …
    "step_k8s_config": {"container_config": {"resources": {
        "requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}}},
}

# MotherDuck: many pods write one database through the same DuckDBResource, a connection string instead of a path.
DEFAULT_DATABASE = "md:regime_platform"


def cluster_executor() -> dg.ExecutorDefinition:
    return k8s_job_executor.configured(K8S_EXECUTOR_CONFIG, name="k8s_regime")


class MotherDuckResource(DuckDBResource):
    """``DuckDBResource`` with the MotherDuck token as a field of its own, so that it can be ``dg.EnvVar`` —
    resolved when a run launches, never at load, never shown in the UI. (A value inside ``connection_config`` is not
    resolved: an EnvVar there reaches DuckDB as ``{"env": NAME}``.) Every other behaviour is DuckDBResource's."""

    motherduck_token: Optional[str] = None

    @contextlib.contextmanager
    def get_connection(self):
        if not self.motherduck_token:  # the token may also come from DuckDB's own motherduck_token variable
            with super().get_connection() as con:
                yield con
            return
        config = {"custom_user_agent": "dagster", **self.connection_config, "motherduck_token": self.motherduck_token}
        con = duckdb.connect(database=self.database, read_only=False, config=config)
        try:
            yield con
        finally:
            con.close()


def warehouse_database() -> str:
    """REGIME_WAREHOUSE_DATABASE when set (another MotherDuck database, or a DuckDB path — then keep the pool limit at
    1), else MotherDuck's ``md:regime_platform``."""
    return os.environ.get("REGIME_WAREHOUSE_DATABASE", "").strip() or DEFAULT_DATABASE


def cluster_resources() -> dict:
    """The single-machine resources with the warehouse on MotherDuck (token from MOTHERDUCK_TOKEN at launch) or on
    REGIME_WAREHOUSE_DATABASE; the artifacts on a shared volume mounted at REGIME_DATA_DIR in every pod."""
    resources = default_resources()
    database = warehouse_database()
    duck = (MotherDuckResource(database=database, motherduck_token=dg.EnvVar("MOTHERDUCK_TOKEN"))
            if database.startswith("md:") else DuckDBResource(database=database))
    resources["warehouse"] = Warehouse(duckdb=duck)
    return resources


@dg.definitions
def defs() -> dg.Definitions:
    base = single_machine.defs()
    return dg.Definitions(
        assets=base.assets, asset_checks=base.asset_checks, jobs=base.jobs, schedules=base.schedules,
        sensors=base.sensors, resources={**(base.resources or {}), **cluster_resources()}, loggers=base.loggers,
        executor=cluster_executor(), metadata=base.metadata,
    )
