"""Schedules, freshness checks and their sensor: evaluated at given instants, faults planted in a real instance."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from regime_platform import calendar
from regime_platform.defs import automation

NY = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def defs():
    from regime_platform.definitions import defs as build

    return build()


def tick(defs, name: str, when: dt.datetime, tickers=("SPY",)):
    from regime_platform.defs.resources import RegimeSettings
    from regime_platform_tests.conftest import ticker_instance

    schedule = defs.get_schedule_def(name)
    with dg.instance_for_test() as instance:
        ticker_instance(*tickers, instance=instance)
        with dg.build_schedule_context(  # closed here: an open context keeps the instance's state storage current
                instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def(),
                resources={"settings": RegimeSettings(tickers=list(tickers))}) as context:
            return schedule.evaluate_tick(context)


@pytest.mark.parametrize("when, expected", [
    (dt.datetime(2024, 11, 27, 18, 0, tzinfo=NY), ["2024-11-27"]),   # Wednesday after the close: that session
    (dt.datetime(2024, 11, 28, 18, 0, tzinfo=NY), []),               # Thanksgiving: XNYS holiday, no run
    (dt.datetime(2024, 11, 29, 18, 0, tzinfo=NY), ["2024-11-29"]),   # early close (13:00): still that session
    (dt.datetime(2024, 11, 30, 18, 0, tzinfo=NY), []),               # Saturday: no run
    (dt.datetime(2018, 12, 24, 18, 0, tzinfo=NY), ["2018-12-24"]),
    (dt.datetime(2018, 12, 25, 18, 0, tzinfo=NY), []),               # Christmas
])
def test_daily_schedule_requests_the_closed_session_or_nothing(defs, when, expected):
    data = tick(defs, "daily_forecast_schedule", when)
    assert [r.partition_key for r in data.run_requests or []] == expected


def test_daily_schedule_asks_again_for_a_session_whose_run_failed(defs):
    """The run of 2024-11-26 failed (its retries spent): its run_key is used, so the tick of the 27th asks for it
    again under a new key, beside the 27th itself; the 25th, which succeeded, is not asked for."""
    from regime_platform.defs.resources import RegimeSettings

    @dg.op
    def fails():
        raise RuntimeError("planted: the vendor was down")

    @dg.op
    def works():
        return 1

    schedule = defs.get_schedule_def("daily_forecast_schedule")
    with dg.instance_for_test() as instance:
        for session, op in (("2024-11-25", works), ("2024-11-26", fails)):
            dg.GraphDefinition(name=f"daily_{op.name}", node_defs=[op]).to_job().execute_in_process(
                instance=instance, raise_on_error=False,
                tags={"dagster/schedule_name": "daily_forecast_schedule", "dagster/partition": session})
        with dg.build_schedule_context(instance=instance, repository_def=defs.get_repository_def(),
                                       scheduled_execution_time=dt.datetime(2024, 11, 27, 18, 0, tzinfo=NY),
                                       resources={"settings": RegimeSettings()}) as context:
            requests = schedule.evaluate_tick(context).run_requests
    assert [(r.partition_key, r.run_key) for r in requests] == [("2024-11-27", "2024-11-27"),
                                                                ("2024-11-26", "2024-11-26-again-2024-11-27")]


def test_daily_job_runs_the_session_chain_in_one_run(defs):
    job = defs.resolve_job_def("daily_forecast_job")
    keys = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert keys == {"ohlcv", "macro", "features", "regime_forecasts", "forecast_scoreboard"}  # every ticker, a session
    # the ledger's macro-input models read that session's macro values: macro runs before regime_forecasts
    assert dg.AssetKey("macro") in job.asset_layer.asset_graph.get(dg.AssetKey("regime_forecasts")).parent_keys
    assert defs.get_schedule_def("daily_forecast_schedule").execution_timezone == "America/New_York"


def test_weekly_retrain_is_one_run_per_ticker_of_the_per_ticker_assets(defs):
    keys = {k.to_user_string() for k in defs.resolve_job_def("weekly_retrain_job").asset_layer.executable_asset_keys}
    assert {"regime_labels", "walk_forward_targets", "lstm_model", "persistence_model", "model_comparison",
            "regime_profiles"} <= keys
    assert not keys & {"ohlcv", "features", "regime_forecasts", "forecast_scoreboard"}
    data = tick(defs, "weekly_retrain_schedule", dt.datetime(2024, 11, 30, 6, 0, tzinfo=NY), tickers=("SPY", "QQQ"))
    assert sorted(r.partition_key for r in data.run_requests) == ["QQQ", "SPY"]
    assert len({r.run_key for r in data.run_requests}) == 2


def test_tickers_sensor_adds_each_configured_ticker_once(defs):
    from regime_platform.defs.resources import RegimeSettings
    from regime_platform_tests.conftest import ticker_instance

    sensor = defs.get_sensor_def("tickers_sensor")
    with dg.instance_for_test() as instance:
        ticker_instance("SPY", instance=instance)
        context = dg.build_sensor_context(instance=instance, resources={
            "settings": RegimeSettings(tickers=["SPY", "QQQ"])}, definitions=defs)
        result = sensor.evaluate_tick(context)
        (request,) = result.dynamic_partitions_requests
        assert (request.partitions_def_name, list(request.partition_keys)) == ("tickers", ["QQQ"])
        instance.add_dynamic_partitions("tickers", ["QQQ"])
        assert not sensor.evaluate_tick(context).dynamic_partitions_requests


def test_everything_ships_stopped(defs):
    for name in ("daily_forecast_schedule", "weekly_retrain_schedule"):
        assert defs.get_schedule_def(name).default_status == dg.DefaultScheduleStatus.STOPPED
    for name in ("freshness_sensor", "labels_file_sensor", "tickers_sensor"):
        assert defs.get_sensor_def(name).default_status == dg.DefaultSensorStatus.STOPPED


@pytest.mark.parametrize("now, due", [
    (dt.datetime(2024, 11, 27, 19, 29, tzinfo=NY), dt.date(2024, 11, 26)),  # before the deadline: yesterday
    (dt.datetime(2024, 11, 27, 19, 30, tzinfo=NY), dt.date(2024, 11, 27)),
    (dt.datetime(2024, 11, 28, 23, 0, tzinfo=NY), dt.date(2024, 11, 27)),   # holiday: never due
    (dt.datetime(2024, 12, 1, 12, 0, tzinfo=NY), dt.date(2024, 11, 29)),    # Sunday: Friday's session
])
def test_due_session_follows_the_calendar(now, due):
    assert calendar.due_session(now) == due


def run_freshness_check(instance, asset: str):
    check = next(c for c in automation.freshness_checks if next(iter(c.check_keys)).asset_key.to_user_string() == asset)
    result = dg.materialize([check], instance=instance, raise_on_error=False,
                            selection=dg.AssetSelection.checks(check))
    return result.get_asset_check_evaluations()[0]


@pytest.mark.parametrize("asset", automation.FRESH_ASSETS)
def test_freshness_check_goes_red_on_a_missed_session_and_green_once_it_lands(asset):
    due = calendar.due_session(dt.datetime.now(dt.timezone.utc))
    before = dg.AssetMaterialization(asset_key=asset, partition=(due - dt.timedelta(days=7)).isoformat())
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(before)  # an older session landed, the due one did not
        evaluation = run_freshness_check(instance, asset)
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert f"session {due} was due" in evaluation.description
        assert evaluation.metadata["due_session"].value == str(due)
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, partition=due.isoformat()))
        assert run_freshness_check(instance, asset).passed


@pytest.mark.parametrize("asset", automation.FRESH_ASSETS)
def test_freshness_is_not_due_while_the_offline_sample_serves(asset):
    """Offline, ohlcv is served by the bundled sample, which ends 2018-12-31: no session since can land, so the check
    says so and passes instead of failing ERROR on every offline run (and `status` listing it as failing)."""
    due = calendar.due_session(dt.datetime.now(dt.timezone.utc))
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key="ohlcv", partition="2018-12-31", metadata={"is_sample": True, "source": "sample:^GSPC"}))
        evaluation = run_freshness_check(instance, asset)
        assert evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
        assert evaluation.description.startswith(f"not due: serving the offline sample, which ends 2018-12-31, so "
                                                 f"session {due} cannot be materialized; go online")
        assert evaluation.metadata["not_due"].value == "serving the offline sample"
        # online again: a live ohlcv materialization makes the missed session overdue once more
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key="ohlcv", partition=(due - dt.timedelta(days=7)).isoformat(), metadata={"is_sample": False}))
        again = run_freshness_check(instance, asset)
        assert not again.passed and again.severity == dg.AssetCheckSeverity.ERROR and "overdue" in again.description


def test_freshness_sensor_requests_the_checks_once_per_due_session(defs):
    with dg.instance_for_test() as instance:
        sensor = defs.get_sensor_def("freshness_sensor")
        result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def()))
        (request,) = result.run_requests
        due = calendar.due_session(dt.datetime.now(dt.timezone.utc))
        assert request.run_key == f"freshness-{due}"
        assert {k.asset_key.to_user_string() for k in request.asset_check_keys} == set(automation.FRESH_ASSETS)


def test_every_job_runs_its_steps_in_process_unless_its_config_asks_for_multiprocess():
    """One writer on the warehouse: a run launched from the UI (no execution config) runs in process, as `make run`
    does, instead of starting a Python per step; multiprocess stays a choice in the launchpad."""
    from regime_platform.definitions import defs

    jobs = defs().resolve_all_job_defs()
    assert {j.name for j in jobs} >= {"__ASSET_JOB", "daily_forecast_job", "weekly_retrain_job"}
    for job in jobs:
        assert job.executor_def.name == "in_process_by_default", job.name
        assert list(dg.validate_run_config(job, {})["execution"]["in_process_by_default"]) == ["in_process"]
    chosen = dg.validate_run_config(jobs[0], {"execution": {"config": {"multiprocess": {}}}})
    assert list(chosen["execution"]["in_process_by_default"]) == ["multiprocess"]
