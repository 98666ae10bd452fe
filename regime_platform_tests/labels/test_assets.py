"""regime_labels materialized in-process: generated labels, a user's file, a bad file that changes nothing, the sensor."""
from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from regime_platform import calendar
from regime_platform.defs.features.assets import features
from regime_platform.defs.ingestion.assets import ohlcv
from regime_platform.defs.labels.assets import (
    label_class_balance,
    labels_cover_sessions,
    labels_file_sensor,
    regime_labels,
)
from regime_platform_tests.conftest import materialize_ticker, read_table, ticker_instance

CHECKS = [label_class_balance, labels_cover_sessions]


@pytest.fixture
def warehouse_with_features(resources):
    tags = {"dagster/asset_partition_range_start": "2012-01-03", "dagster/asset_partition_range_end": "2018-12-31"}
    assert dg.materialize([ohlcv, features], resources=resources, tags=tags).success
    return resources


def test_generated_labels_with_profile_and_checks(warehouse_with_features):
    resources = warehouse_with_features
    result = materialize_ticker([regime_labels, *CHECKS], resources)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    meta = result.asset_materializations_for_node("regime_labels")[0].metadata
    assert meta["labeler"].value == "jump" and "calm" in meta["regimes"].value
    stored = read_table(resources, "SELECT * FROM market.regime_labels ORDER BY date")
    assert stored["labeler"].unique().to_list() == ["jump"]
    assert set(stored["regime"].unique().to_list()) == {0, 1}
    assert stored["fit_end"][0] == stored["date"][-1]  # fit on all labelled history, recorded


def write_user_file(resources, text):
    path = resources["settings"].settings().user_labels_path("SPY")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_user_file_is_taken_as_given_and_a_bad_one_changes_nothing(warehouse_with_features):
    resources = warehouse_with_features
    days = calendar.sessions("2016-01-04", "2018-12-31")
    write_user_file(resources, "Date,regime\n" + "\n".join(f"{d},{int(d.year == 2018)}" for d in days) + "\n")
    assert materialize_ticker([regime_labels, *CHECKS], resources).success
    before = read_table(resources, "SELECT * FROM market.regime_labels ORDER BY date")
    assert before.height == len(days) and before["labeler"].unique().to_list() == ["user"]
    assert before["regime"].to_list() == [int(d.year == 2018) for d in days]
    assert before["fit_start"].null_count() == before.height
    write_user_file(resources, "Date,Regime\n2018-01-02,1\n")
    result = materialize_ticker([regime_labels], resources, raise_on_error=False)
    assert not result.success
    assert read_table(resources, "SELECT * FROM market.regime_labels ORDER BY date").equals(before)


def test_sensor_requests_one_run_per_content_change(tmp_path, resources):
    settings = resources["settings"]
    instance = ticker_instance("SPY")

    def tick(cursor):
        defs = dg.Definitions(assets=[ohlcv, features, regime_labels], sensors=[labels_file_sensor],
                              resources=resources)
        ctx = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                      resources={"settings": settings})
        with dg.partition_loading_context(dynamic_partitions_store=instance):  # the daemon provides it
            result = labels_file_sensor.evaluate_tick(ctx)
        return result.run_requests, result.cursor

    runs, cursor = tick(None)
    assert runs == [] and cursor == "SPY=absent"  # no file: nothing to do
    path = write_user_file(resources, "Date,regime\n2018-01-02,0\n2018-01-03,1\n")
    runs, cursor = tick(cursor)
    assert len(runs) == 1 and runs[0].partition_key == "SPY"
    assert dg.AssetKey("regime_labels") in runs[0].asset_selection
    runs, cursor2 = tick(cursor)
    assert runs == [] and cursor2 == cursor  # untouched: no run
    path.write_text("Date,regime\n2018-01-02,1\n2018-01-03,0\n")
    runs, cursor3 = tick(cursor)
    assert len(runs) == 1 and cursor3 != cursor
    path.unlink()  # back to generated labels: also a change
    runs, _ = tick(cursor3)
    assert len(runs) == 1


def settings_with(resources, **changes):
    from regime_platform.defs.resources import RegimeSettings

    current = resources["settings"]
    return RegimeSettings(data_dir=current.data_dir, source=current.source, **changes)


def test_class_balance_uses_the_labelers_configured_regimes(warehouse_with_features):
    """No 20 % fall from a peak in 2012-2018: the drawdown labeler assigns only id 0 of its two regimes. K is the
    labeler's configured number of regimes, so the missing bear regime is an ERROR, not a pass."""
    resources = {**warehouse_with_features, "settings": settings_with(warehouse_with_features, labeler="drawdown")}
    result = materialize_ticker([regime_labels, label_class_balance], resources, raise_on_error=False)
    stored = read_table(resources, "SELECT DISTINCT regime FROM market.regime_labels")
    assert stored["regime"].to_list() == [0]
    evaluation = result.get_asset_check_evaluations()[0]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["configured_regimes"].value == 2
    assert "regime 1 has no rows" in evaluation.metadata["problems"].value


def test_label_lag_reaches_the_stored_known_regime(warehouse_with_features):
    """A user's hindsight-dated file with REGIME_LABEL_LAG = 21: the regime known at t is the label 21 sessions
    earlier, through the asset as Dagster runs it."""
    base = warehouse_with_features
    resources = {**base, "settings": settings_with(base, label_lag=21)}
    days = calendar.sessions("2016-01-04", "2018-12-31")
    labels = [int(d >= dt.date(2018, 1, 29)) for d in days]
    write_user_file(resources, "Date,regime\n" + "\n".join(f"{d},{r}" for d, r in zip(days, labels)) + "\n")
    assert materialize_ticker([regime_labels], resources).success
    stored = read_table(resources, "SELECT date, regime, known_regime FROM market.regime_labels ORDER BY date")
    assert stored["regime"].to_list() == labels
    assert stored["known_regime"].to_list() == [None] * 21 + labels[:-21]
    switch = labels.index(1)
    assert stored["known_regime"][switch + 20] == 0 and stored["known_regime"][switch + 21] == 1
