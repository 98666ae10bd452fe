"""The features asset: one range, then day by day, equals a full recompute; `features_causal` catches tampering."""
from __future__ import annotations

import dagster as dg
import polars as pl

from regime_platform import calendar
from regime_platform.defs.features.assets import features, features_causal
from regime_platform.defs.ingestion.assets import ohlcv
from regime_platform.features.causality import compare_rows
from regime_platform.features.compute import compute_features
from regime_platform_tests.conftest import read_table


def run(resources, assets, start, end, raise_on_error=True):
    return dg.materialize(assets, resources=resources, raise_on_error=raise_on_error,
                          tags={"dagster/asset_partition_range_start": start,
                                "dagster/asset_partition_range_end": end})


def test_daily_increments_reproduce_a_full_recompute(resources):
    assert run(resources, [ohlcv], "2016-01-04", "2018-12-31").success
    first = run(resources, [features, features_causal], "2016-01-04", "2018-11-30")
    assert first.success and first.get_asset_check_evaluations()[0].passed
    meta = first.asset_materializations_for_node("features")[0].metadata
    assert meta["rows_written"].value == len(calendar.sessions("2016-01-04", "2018-11-30"))
    # a backfill's tables go to its log once, not into each of its 733 partitions' events; the numbers stay
    assert "null_counts" not in meta and "null_counts, preview: in this run's log at DEBUG" in meta["tables_in_run_log"].value
    for day in calendar.sessions("2018-12-03", "2018-12-31"):  # one partition a day, as the schedule runs it
        daily = dg.materialize([features], resources=resources, partition_key=day.isoformat())
        assert daily.success
    assert "vol_z_252" in daily.asset_materializations_for_node("features")[0].metadata["null_counts"].value
    stored = read_table(resources, "SELECT * FROM market.features ORDER BY date")
    prices = read_table(resources, "SELECT date, ticker, adj_close, volume FROM market.ohlcv ORDER BY date")
    full = compute_features(prices)
    assert stored["date"].to_list() == full["date"].to_list()
    assert compare_rows(stored, full) == []
    # warm-up rows are NULL in the warehouse too, never 0
    assert stored["vol_z_252"].head(271).null_count() == 271


def test_features_causal_fails_on_a_stored_value_that_prices_do_not_give(resources):
    assert run(resources, [ohlcv], "2018-01-02", "2018-12-31").success
    assert run(resources, [features], "2018-01-02", "2018-12-31").success
    with resources["warehouse"].connect() as con:
        con.execute("UPDATE market.features SET rsi_14 = rsi_14 + 1e-6 WHERE date = '2018-12-27'")
    result = dg.materialize([features_causal], resources=resources, raise_on_error=False,
                            selection=dg.AssetSelection.checks(features_causal))
    evaluation = result.get_asset_check_evaluations()[0]
    assert not evaluation.passed and "rsi_14" in evaluation.metadata["problems"].value


def test_features_refuse_sessions_without_prices(resources):
    assert run(resources, [ohlcv], "2018-01-02", "2018-06-29").success
    result = run(resources, [features], "2018-06-01", "2018-07-31", raise_on_error=False)
    assert not result.success
    assert read_table(resources, "SELECT count(*) FROM market.features").item() == 0


def test_features_causal_catches_a_feature_that_reads_tomorrows_price(resources, monkeypatch):
    """A real look-ahead planted in a feature definition, through the asset and the check as Dagster runs them."""
    from regime_platform.features import compute as feature_module

    honest = feature_module._feature_exprs

    def peeking():
        exprs = honest()
        p = pl.col("adj_close")
        tomorrow = (p.shift(-1) / p.rolling_mean(200).over("ticker") - 1).over("ticker").alias("sma_ratio_200")
        return [tomorrow if e.meta.output_name() == "sma_ratio_200" else e for e in exprs]

    assert run(resources, [ohlcv], "2016-01-04", "2018-12-31").success
    monkeypatch.setattr(feature_module, "_feature_exprs", peeking)
    # the newest 21 rows stored day by day, as the schedule runs: each was the tip and never saw tomorrow, so a
    # check of the newest rows alone passes this look-ahead; the backfilled history saw later prices
    assert run(resources, [features], "2016-01-04", "2018-11-29").success
    for day in calendar.sessions("2018-11-30", "2018-12-31"):
        assert dg.materialize([features], resources=resources, partition_key=day.isoformat()).success
    result = dg.materialize([features_causal], resources=resources, raise_on_error=False,
                            selection=dg.AssetSelection.checks(features_causal))
    evaluation = result.get_asset_check_evaluations()[0]
    problems = evaluation.metadata["problems"].value
    assert not evaluation.passed and "sma_ratio_200" in problems and "reads later prices" in problems
    early = [d for d in evaluation.metadata["dates_checked"].value.split(", ") if d < "2018-01-01"]
    assert len(early) >= 10  # most checked dates lie far from the end of the history
    monkeypatch.setattr(feature_module, "_feature_exprs", honest)
    assert run(resources, [features], "2016-01-04", "2018-12-31").success
    again = dg.materialize([features_causal], resources=resources, selection=dg.AssetSelection.checks(features_causal))
    assert again.get_asset_check_evaluations()[0].passed
