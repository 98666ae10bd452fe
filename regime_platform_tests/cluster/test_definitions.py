"""docs/scaling.md's cluster configuration loads: the Kubernetes executor, a shared warehouse, date × ticker."""
from __future__ import annotations

import logging

import dagster as dg
import pytest

pytest.importorskip("dagster_k8s", reason="dagster-k8s is not installed (pip install -e .[dev] or .[cluster])")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from regime_platform.cluster import definitions as cluster_definitions

    return cluster_definitions, cluster_definitions.defs()


def test_cluster_definitions_load_and_validate(cluster):
    module, defs = cluster
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("daily_forecast_job")
    assert job.executor_def.name == "k8s_regime"
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "k8s_regime"
    # the asset code is the single-machine code: same assets, one more (the multi-ticker ingestion)
    from regime_platform.definitions import defs as single

    single_keys = {k.to_user_string() for k in single().resolve_asset_graph().get_all_asset_keys()}
    cluster_keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert cluster_keys - single_keys == {"ohlcv_by_ticker"}


def test_the_k8s_executor_config_is_checked_against_dagster_k8s_schema(cluster):
    module, defs = cluster
    from dagster_k8s import k8s_job_executor

    job = defs.resolve_job_def("weekly_retrain_job")
    execution = dg.validate_run_config(job, {})["execution"]["k8s_regime"]  # the documented config, checked
    assert execution["job_namespace"] == "regime-platform" and execution["max_concurrent"] == 4
    assert execution["step_k8s_config"]["container_config"]["resources"]["limits"]["memory"] == "4Gi"
    bad = k8s_job_executor.configured({**module.K8S_EXECUTOR_CONFIG, "max_concurent_typo": 2}, name="bad")
    with pytest.raises(dg.DagsterInvalidConfigError, match="max_concurent_typo"):  # a typo would be caught
        dg.validate_run_config(dg.Definitions(assets=[module.ohlcv_by_ticker], executor=bad,
                                              resources=module.cluster_resources())
                               .resolve_implicit_global_asset_job_def(), {})


def test_date_by_ticker_partitions(cluster):
    module, defs = cluster
    partitions = module.ticker_session_partitions
    dims = [k.keys_by_dimension for k in partitions.get_partition_keys()]
    christmas_week = [d for d in dims if "2018-12-24" <= d["date"] <= "2018-12-26"]
    assert sorted((d["date"], d["ticker"]) for d in christmas_week) == sorted(
        (day, t) for day in ("2018-12-24", "2018-12-26") for t in module.TICKERS)  # no Christmas key
    assert len(dims) == len(module.TICKERS) * len(partitions.get_partitions_def_for_dimension("date").get_partition_keys())
    asset = defs.resolve_assets_def("ohlcv_by_ticker")
    assert asset.partitions_def == partitions


def test_the_warehouse_can_point_at_motherduck(cluster, monkeypatch):
    module, _ = cluster
    monkeypatch.setenv("REGIME_WAREHOUSE_DATABASE", "md:regime_test")
    assert module.cluster_resources()["warehouse"].duckdb.database == "md:regime_test"


def test_the_multi_ticker_ingestion_logs_a_vendor_revision_like_ohlcv(cluster, tmp_path):
    """`ohlcv_by_ticker` is `ohlcv`'s ingestion for one (session, ticker): a stored close that differs from what the
    source now reports for the overlap session is a vendor revision — logged in market.ohlcv_revisions and warned
    about — and the sample stand-in is said, exactly as for `ohlcv`."""
    from dagster_duckdb import DuckDBResource

    from regime_platform.defs.resources import RegimeSettings, Warehouse

    module, _ = cluster
    resources = {"warehouse": Warehouse(duckdb=DuckDBResource(database=str(tmp_path / "warehouse.duckdb"))),
                 "settings": RegimeSettings(data_dir=str(tmp_path), source="sample")}
    instance = dg.DagsterInstance.ephemeral()
    ticker = module.TICKERS[0]

    def ingest(day: str):
        key = dg.MultiPartitionKey({"date": day, "ticker": ticker})
        return dg.materialize([module.ohlcv_by_ticker], partition_key=key, resources=resources, instance=instance)

    assert ingest("2018-12-20").success
    with resources["warehouse"].connect() as con:  # plant the revision: the stored close is not the vendor's
        con.execute("UPDATE market.ohlcv SET close = close * 1.01 WHERE ticker = ? AND date = '2018-12-20'", [ticker])
    result = ingest("2018-12-21")
    assert result.success
    revisions = resources["warehouse"].read("SELECT ticker, date::VARCHAR AS date, stored_close, vendor_close "
                                            "FROM market.ohlcv_revisions")
    assert revisions.height == 1 and revisions.row(0)[:2] == (ticker, "2018-12-20")
    stored_close, vendor_close = revisions.row(0)[2:]
    assert stored_close == pytest.approx(vendor_close * 1.01)
    warnings = [e.user_message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    assert any("vendor revision" in w for w in warnings), warnings
    assert any("serving the bundled SAMPLE" in w for w in warnings), warnings
    meta = result.asset_materializations_for_node("ohlcv_by_ticker")[0].metadata
    assert meta["revisions_detected"].value == 1 and meta["ticker"].value == ticker
    rows = resources["warehouse"].read("SELECT date::VARCHAR AS date FROM market.ohlcv WHERE ticker = ? ORDER BY date",
                                       [ticker])
    assert rows["date"].to_list() == ["2018-12-20", "2018-12-21"]
