"""docs/scaling.md's cluster configuration loads: the single-machine definitions on the Kubernetes executor, the warehouse
on MotherDuck, tickers fanned out as runs of the ticker partitions, and an instance config with a raised pool limit."""
import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

from regime_platform.defs.resources import RegimeSettings, Warehouse

pytest.importorskip("dagster_k8s", reason="dagster-k8s is not installed (pip install -e .[dev] or .[cluster])")

ROOT = Path(__file__).resolve().parents[2]
INSTANCE_YAML = ROOT / "docs" / "cluster" / "dagster.yaml"


@pytest.fixture(scope="module")
def cluster():
    from regime_platform.cluster import definitions as cluster_definitions

    return cluster_definitions, cluster_definitions.defs()


@pytest.fixture(scope="module")
def single():
    from regime_platform.definitions import defs

    return defs()


def test_cluster_definitions_load_validate_and_run_every_job_on_kubernetes(cluster, single):
    _, defs = cluster
    dg.Definitions.validate_loadable(defs)
    jobs = defs.resolve_all_job_defs()
    assert {"daily_forecast_job", "weekly_retrain_job"} <= {j.name for j in jobs}
    assert {j.name: j.executor_def.name for j in jobs} == {j.name: "k8s_regime" for j in jobs}
    # no asset code changes: exactly the single-machine assets and checks
    assert defs.resolve_asset_graph().get_all_asset_keys() == single.resolve_asset_graph().get_all_asset_keys()
    assert (defs.resolve_asset_graph().asset_check_keys == single.resolve_asset_graph().asset_check_keys)


def test_daily_assets_hold_every_ticker_and_per_ticker_assets_fan_out_as_runs(cluster):
    from regime_platform.defs.partitions import session_partitions, ticker_partitions

    _, defs = cluster
    graph = defs.resolve_asset_graph()
    partitions = {k.to_user_string(): graph.get(k).partitions_def for k in graph.get_all_asset_keys()}
    assert not any(isinstance(p, dg.MultiPartitionsDefinition) for p in partitions.values())  # no date × ticker grid
    assert partitions["ohlcv"] == partitions["features"] == session_partitions
    assert partitions["regime_labels"] == ticker_partitions
    retrain = defs.resolve_job_def("weekly_retrain_job")
    assert retrain.partitions_def == ticker_partitions
    assert "regime_labels" in {k.to_user_string() for k in retrain.asset_layer.executable_asset_keys}

    # the weekly schedule asks for one run per registered ticker: on the cluster the run queue runs them side by side
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(ticker_partitions.name, ["SPY", "QQQ", "IWM"])
        with dg.build_schedule_context(
                instance=instance, repository_def=defs.get_repository_def(),
                resources={"settings": RegimeSettings(tickers=["SPY", "QQQ", "IWM", "DIA"])},
                scheduled_execution_time=dt.datetime(2026, 11, 28, 6, tzinfo=dt.timezone.utc)) as context:
            requests = defs.resolve_schedule_def("weekly_retrain_schedule").evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["SPY", "QQQ", "IWM"]  # DIA: not yet a partition (tickers_sensor)
    assert len({r.run_key for r in requests}) == 3


def test_the_k8s_executor_config_is_checked_against_dagster_k8s_schema(cluster):
    module, defs = cluster
    from dagster_k8s import k8s_job_executor

    job = defs.resolve_job_def("weekly_retrain_job")
    execution = dg.validate_run_config(job, {})["execution"]["k8s_regime"]  # the documented config, checked
    assert execution["job_namespace"] == "regime-platform" and execution["max_concurrent"] == 4
    assert execution["step_k8s_config"]["container_config"]["resources"]["limits"]["memory"] == "4Gi"
    assert execution["env_secrets"] == ["regime-platform-env"]

    @dg.asset
    def trivial() -> None:
        return None

    bad = k8s_job_executor.configured({**module.K8S_EXECUTOR_CONFIG, "max_concurent_typo": 2}, name="bad")
    with pytest.raises(dg.DagsterInvalidConfigError, match="max_concurent_typo"):  # a typo would be caught
        dg.validate_run_config(dg.Definitions(assets=[trivial], executor=bad).resolve_implicit_global_asset_job_def(),
                               {})


def test_the_warehouse_is_motherduck_with_the_token_resolved_at_launch_only(cluster, monkeypatch):
    module, _ = cluster
    monkeypatch.delenv("REGIME_WAREHOUSE_DATABASE", raising=False)
    monkeypatch.setenv("MOTHERDUCK_TOKEN", "not-a-real-token-123")
    duck = module.cluster_resources()["warehouse"].duckdb
    assert isinstance(duck, module.MotherDuckResource) and duck.database == "md:regime_platform"
    assert isinstance(duck.motherduck_token, dg.EnvVar) and duck.motherduck_token.env_var_name == "MOTHERDUCK_TOKEN"
    assert "not-a-real-token-123" not in repr(duck)  # what the UI shows of a resource never carries the secret

    monkeypatch.setenv("REGIME_WAREHOUSE_DATABASE", "md:regime_test")
    assert module.cluster_resources()["warehouse"].duckdb.database == "md:regime_test"
    monkeypatch.setenv("REGIME_WAREHOUSE_DATABASE", "/shared/warehouse.duckdb")  # a file: plain DuckDB, no token
    duck = module.cluster_resources()["warehouse"].duckdb
    assert type(duck).__name__ == "DuckDBResource" and duck.database == "/shared/warehouse.duckdb"


def test_the_motherduck_token_reaches_duckdb_when_a_run_connects(cluster, monkeypatch, tmp_path):
    """Offline: duckdb.connect is replaced by one that records its config and opens a local file instead."""
    import duckdb

    module, _ = cluster
    seen = {}
    real_connect = duckdb.connect

    def fake_connect(database, read_only=False, config=None):
        seen.update(database=database, config=dict(config or {}))
        return real_connect(str(tmp_path / "stand_in.duckdb"))

    monkeypatch.setattr(module.duckdb, "connect", fake_connect)
    monkeypatch.setenv("MOTHERDUCK_TOKEN", "launch-time-token")

    @dg.asset
    def touches_warehouse(warehouse: Warehouse) -> None:
        with warehouse.connect() as con:
            con.execute("SELECT 1").fetchall()

    resources = {"warehouse": Warehouse(duckdb=module.MotherDuckResource(
        database="md:regime_test", motherduck_token=dg.EnvVar("MOTHERDUCK_TOKEN")))}
    assert dg.materialize([touches_warehouse], resources=resources).success
    assert seen["database"] == "md:regime_test" and seen["config"]["motherduck_token"] == "launch-time-token"


def test_the_cluster_instance_config_raises_the_duckdb_pool_and_is_valid(tmp_path):
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster_k8s.launcher import K8sRunLauncher

    config = yaml.safe_load(INSTANCE_YAML.read_text())
    local = yaml.safe_load((ROOT / "dagster.yaml.template").read_text())
    assert local["concurrency"]["pools"]["default_limit"] == 1  # one DuckDB file, one writer: unchanged
    assert config["concurrency"]["pools"]["default_limit"] == 8
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 8
    assert all(isinstance(v, dict) and set(v) == {"env"} for k, v in config["storage"]["postgres"]["postgres_db"].items()
               if k != "port")  # hosts and secrets from the environment, none written in the file

    # the whole file against Dagster's instance schema (offline: the Postgres fields are only validated here)
    shutil.copy(INSTANCE_YAML, tmp_path / "dagster.yaml")
    validated, _ = dagster_instance_config(str(tmp_path))
    assert validated["concurrency"]["pools"]["default_limit"] == 8
    launcher = validate_config(K8sRunLauncher.config_type(), config["run_launcher"]["config"])
    assert launcher.success, launcher.errors

    # and as an instance: the same file with SQLite storage and the default run launcher swapped in
    home = tmp_path / "home"
    home.mkdir()
    offline = {**config, "storage": {"sqlite": {"base_dir": str(home)}}}
    offline.pop("run_launcher")
    (home / "dagster.yaml").write_text(yaml.safe_dump(offline))
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == 8
        assert concurrency.run_queue_config.max_concurrent_runs == 8
    finally:
        instance.dispose()
