"""Macro features: point in time by construction (a value changed at t changes nothing at t), and `features_causal`
failing on a planted look-ahead in market.macro through the real assets."""
from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import pytest

from regime_platform import calendar
from regime_platform.defs.features.assets import features, features_causal
from regime_platform.defs.ingestion.assets import ohlcv
from regime_platform.defs.ingestion.macro import macro
from regime_platform.features import macro as fm
from regime_platform.ingestion import macro as rules
from regime_platform.ingestion import macro_sources as sources

D = dt.date


@pytest.fixture(scope="module")
def sample_rows() -> pl.DataFrame:
    answers = sources.fetch_series(["VIXCLS", "BAA", "AAA"], D(2013, 1, 1), D(2018, 12, 31), "sample")
    return pl.concat([rules.build_rows(a, 1, dt.datetime(2019, 1, 2)).rows for a in answers.values()])


def changed(rows: pl.DataFrame, series: str, day: dt.date, value: float) -> pl.DataFrame:
    hit = (pl.col("series") == series) & (pl.col("date") == day)
    return rows.with_columns(pl.when(hit).then(value).otherwise(pl.col("value")).alias("value"))


def test_changing_the_value_dated_t_or_its_month_changes_no_feature_at_t(sample_rows):
    sessions = calendar.sessions(D(2014, 1, 2), D(2018, 12, 31))
    base = fm.macro_features(sessions, sample_rows)
    t = D(2018, 10, 10)
    later = fm.macro_features(sessions, changed(changed(sample_rows, "VIXCLS", t, 99.0), "BAA", D(2018, 10, 1), 9.9))
    upto = pl.col("date") <= t
    assert base.filter(upto).equals(later.filter(upto))
    # the VIX close of t is used from the next session on, and October's Baa after October plus 5 sessions
    assert base.filter(pl.col("date") == D(2018, 10, 11))["macro_vix_z_252"][0] != \
        later.filter(pl.col("date") == D(2018, 10, 11))["macro_vix_z_252"][0]
    november = pl.col("date").is_between(D(2018, 11, 1), D(2018, 11, 7))
    assert base.filter(november).equals(later.filter(november).with_columns(base.filter(november)["macro_vix_z_252"]))
    assert base.filter(pl.col("date") == D(2018, 11, 8))["macro_credit_spread"][0] != \
        later.filter(pl.col("date") == D(2018, 11, 8))["macro_credit_spread"][0]


def test_features_are_scale_free_null_until_their_window_and_cover_what_the_sample_serves(sample_rows):
    sessions = calendar.sessions(D(2014, 1, 2), D(2018, 12, 31))
    frame = fm.macro_features(sessions, sample_rows)
    vix = frame["macro_vix_z_252"]
    first = frame.filter(vix.is_not_null())["date"][0]
    assert sessions.index(first) >= fm.Z_WINDOW  # the whole window of usable values first
    assert frame["macro_credit_spread"].drop_nulls().is_between(0.3, 2.0).all()  # Baa − Aaa, percentage points
    used, notes = fm.covering(frame, D(2015, 6, 1), D(2018, 12, 31))
    assert used == ["macro_vix_z_252", "macro_credit_spread", "macro_credit_spread_chg_63"]
    assert any("T10Y2Y" in n for n in notes)
    assert fm.causality_problems(sample_rows, sessions, sessions[::120], 1) == []


def test_a_feature_reading_by_date_instead_of_usability_is_caught(sample_rows):
    sessions = calendar.sessions(D(2014, 1, 2), D(2018, 12, 31))
    leaky = fm.macro_features(sessions, sample_rows.with_columns(pl.col("date").alias("usable_from")))
    problems = fm.causality_problems(sample_rows, sessions, [D(2016, 3, 1), D(2018, 10, 10)], 1, read=leaky)
    assert problems and all("look-ahead" in p for p in problems)


def run(resources, assets, start, end, **kwargs):
    return dg.materialize(assets, resources=resources, tags={"dagster/asset_partition_range_start": start,
                                                             "dagster/asset_partition_range_end": end}, **kwargs)


def test_features_causal_fails_on_a_look_ahead_planted_in_market_macro(resources):
    assert run(resources, [ohlcv, macro], "2018-07-02", "2018-12-31").success
    assert run(resources, [features, features_causal], "2018-07-02", "2018-12-31").get_asset_check_evaluations()[0].passed
    with resources["warehouse"].connect() as con:  # every VIX close usable at the close of its own date
        con.execute("UPDATE market.macro SET usable_from = date WHERE series = 'VIXCLS'")
    result = dg.materialize([features_causal], resources=resources, raise_on_error=False,
                            selection=dg.AssetSelection.checks(features_causal))
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed and "look-ahead" in check.metadata["problems"].value
