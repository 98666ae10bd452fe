"""Faults a vendor brings into an increment, driven through the ohlcv asset (REGIME_SOURCE=csv, your own file, which
the test edits between runs as a vendor edits its history): a revised close in the increment's overlap session, a
1-for-10 reverse split in the unadjusted prices, and a switch of source between two increments. The rules behind
them are in ingestion/bars.py (tested in test_bars.py); here the stored rows, the revisions table and the quality
check say what a user sees."""
from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import pytest

from regime_platform.defs.ingestion.assets import ohlcv, ohlcv_quality
from regime_platform_tests.conftest import platform_resources, read_table

JANUARY = ("2018-01-02", "2018-01-31")
FEBRUARY = ("2018-02-01", "2018-02-05")
OVERLAP = dt.date(2018, 1, 31)


def write_csv(path, bars: pl.DataFrame) -> None:
    bars.select(pl.col("date").alias("Date"), pl.col("open").alias("Open"), pl.col("high").alias("High"),
                pl.col("low").alias("Low"), pl.col("close").alias("Close"), pl.col("adj_close").alias("Adj Close"),
                pl.col("volume").alias("Volume")).write_csv(path)


def run(resources, window, raise_on_error=True):
    return dg.materialize([ohlcv, ohlcv_quality], resources=resources, raise_on_error=raise_on_error,
                          tags={"dagster/asset_partition_range_start": window[0],
                                "dagster/asset_partition_range_end": window[1]})


def stored(resources) -> pl.DataFrame:
    return read_table(resources, "SELECT date, open, high, low, close, adj_close, volume, source FROM market.ohlcv "
                                 "ORDER BY date")


@pytest.fixture
def january(tmp_path, sample_bars):
    """January 2018 stored from your file; the file (through February) is returned for editing."""
    bars = sample_bars.filter(pl.col("date").is_between(dt.date(2018, 1, 2), dt.date(2018, 2, 28)))
    path = tmp_path / "prices.csv"
    write_csv(path, bars)
    resources = platform_resources(tmp_path, source="csv", ohlcv_csv=str(path))
    assert run(resources, JANUARY).success
    return resources, path, bars, stored(resources)


def quality(result) -> dg.AssetCheckEvaluation:
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == "ohlcv_quality")


def test_a_revised_close_in_the_overlap_is_logged_warned_and_leaves_stored_rows_unchanged(january):
    resources, path, bars, before = january
    revised = bars.with_columns(pl.when(pl.col("date") == OVERLAP).then(pl.col(c) * 1.01).otherwise(pl.col(c))
                                .alias(c) for c in ("close", "adj_close", "high"))
    write_csv(path, revised)
    result = run(resources, FEBRUARY)
    assert result.success
    after = stored(resources)
    assert after.filter(pl.col("date") <= OVERLAP).equals(before)  # January exactly as stored
    revisions = read_table(resources, "SELECT date, stored_close, vendor_close FROM market.ohlcv_revisions")
    assert revisions.rows() == [(OVERLAP, before["close"][-1], pytest.approx(before["close"][-1] * 1.01))]
    check = quality(result)
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.WARN
    assert "1 vendor revisions detected" in check.description and "2018-01-31" in check.description
    # February chains on the stored basis: its first return is the vendor's, measured from the revised overlap
    feb1 = after.filter(pl.col("date") == dt.date(2018, 2, 1))["adj_close"][0]
    vendor_return = bars.filter(pl.col("date") == dt.date(2018, 2, 1))["adj_close"][0] / (
        bars.filter(pl.col("date") == OVERLAP)["adj_close"][0] * 1.01)
    assert feb1 / before["adj_close"][-1] == pytest.approx(vendor_return, rel=1e-12)


def test_a_reverse_split_in_unadjusted_prices_is_no_price_jump_in_the_adjusted_history(january):
    """1-for-10 on 2018-02-01: the vendor's unadjusted prices are ten times higher from that day, and it back-adjusts
    every earlier Adj Close by the same factor. Stored January is unchanged; February's adjusted closes continue it
    at the market's own return, so features and labels see no 900 % day; the quality check passes."""
    resources, path, bars, before = january
    split_day = dt.date(2018, 2, 1)
    after_split = pl.col("date") >= split_day
    vendor = bars.with_columns(
        *(pl.when(after_split).then(pl.col(c) * 10).otherwise(pl.col(c)).alias(c) for c in ("open", "high", "low",
                                                                                              "close")),
        pl.when(after_split).then(pl.col("volume") // 10).otherwise(pl.col("volume")).alias("volume"),
        (pl.col("adj_close") * 10).alias("adj_close"))
    write_csv(path, vendor)
    result = run(resources, FEBRUARY)
    assert result.success
    after = stored(resources)
    assert after.filter(pl.col("date") <= OVERLAP).equals(before)
    february = after.filter(pl.col("date") >= split_day)
    truth = bars.filter(pl.col("date").is_between(split_day, dt.date.fromisoformat(FEBRUARY[1])))
    assert february["date"].to_list() == truth["date"].to_list()
    assert (february["adj_close"] / truth["adj_close"]).to_list() == pytest.approx([1.0] * february.height, rel=1e-12)
    assert february["close"].to_list() == pytest.approx((truth["close"] * 10).to_list())  # as the vendor sent them
    assert read_table(resources, "SELECT count(*) FROM market.ohlcv_revisions").item() == 0  # the close did not move
    assert quality(result).passed


def test_a_switch_of_source_between_two_increments_is_refused_and_stores_nothing(january, tmp_path):
    resources, _, _, before = january
    sample = platform_resources(tmp_path, source="sample")
    result = run(sample, FEBRUARY, raise_on_error=False)
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    message = " ".join(e.message for e in (error, error.cause) if e is not None)
    assert "came from csv" in message and "never chained" in message and "full backfill" in message
    assert stored(resources).equals(before)
    assert read_table(resources, "SELECT count(*) FROM market.ohlcv_revisions").item() == 0
