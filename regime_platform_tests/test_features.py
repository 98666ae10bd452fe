"""Features: TA-Lib parity, the design's definitions, NULL warm-up, causality, incremental = full recompute."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
import talib
from hypothesis import given, settings, strategies as st

from regime_platform.causality import compare_rows
from regime_platform.features import (FEATURE_COLUMNS, LOOKBACK_SESSIONS, MODEL_FEATURES, compute_features,
                                      features_for_range)


@pytest.fixture(scope="module")
def bars(sample_bars):
    return sample_bars.with_columns(pl.lit("SPY").alias("ticker"))


@pytest.fixture(scope="module")
def feats(bars):
    return compute_features(bars)


def col(frame, name):
    return frame[name].to_numpy().astype(float)


def talib_reference(prices):
    macd, signal, hist = talib.MACD(prices, 12, 26, 9)
    upper, mid, lower = talib.BBANDS(prices, 20, 2, 2, 0)
    return {"rsi_14": talib.RSI(prices, 14), "macd": macd, "macd_signal": signal, "macd_hist": hist,
            "bb_upper": upper, "bb_mid": mid, "bb_lower": lower}


def test_talib_parity_on_the_sample(bars, feats):
    for name, expected in talib_reference(bars["adj_close"].to_numpy()).items():
        got = col(feats, name)
        assert (np.isnan(got) == np.isnan(expected)).all(), f"{name}: NULL pattern differs from TA-Lib"
        rel = np.abs(got[250:] - expected[250:]) / np.abs(expected[250:])
        assert rel.max() < 1e-8, f"{name}: {rel.max():.2e} from TA-Lib"


def test_columns_and_model_subset(feats):
    assert feats.columns == ["date", "ticker", *FEATURE_COLUMNS]
    assert not {"bb_upper", "bb_mid", "bb_lower", "macd", "macd_signal", "macd_hist"} & set(MODEL_FEATURES)
    assert "macd_hist_pct" in MODEL_FEATURES and len(MODEL_FEATURES) == 18


def test_warm_up_is_null_never_zero_or_nan(feats):
    first_valid = {c: feats[c].is_not_null().arg_max() for c in FEATURE_COLUMNS}
    assert first_valid == {
        "ret_1d": 1, "ret_5d": 5, "ret_20d": 20, "vol_5d": 5, "vol_20d": 20, "vol_60d": 60,
        "vol_ratio_5_20": 20, "vol_accel": 25, "vol_z_252": 271, "volume_z_20": 19, "rsi_14": 14,
        "macd": 33, "macd_signal": 33, "macd_hist": 33, "macd_hist_pct": 33, "bb_upper": 19, "bb_mid": 19,
        "bb_lower": 19, "bb_pctb": 19, "bb_width": 19, "burst_up_5d": 25, "burst_down_5d": 25,
        "drawdown_252": 251, "sma_ratio_200": 199}
    for c in FEATURE_COLUMNS:
        values = feats[c]
        assert values[first_valid[c]:].null_count() == 0, c
        assert not values.is_nan().any(), c


def test_definitions_against_plain_loops(bars, feats):
    p = bars["adj_close"].to_numpy()
    v = bars["volume"].to_numpy().astype(float)
    r = np.r_[np.nan, np.diff(np.log(p))]
    rows = [300, 1234, 2222, 4000, 5030]
    vol20 = np.array([np.std(r[t - 19:t + 1], ddof=1) * math.sqrt(252) if t >= 20 else np.nan for t in range(len(p))])
    for t in rows:
        assert col(feats, "ret_5d")[t] == pytest.approx(math.log(p[t] / p[t - 5]), rel=1e-12)
        assert col(feats, "vol_20d")[t] == pytest.approx(vol20[t], rel=1e-10)
        z = (vol20[t] - vol20[t - 251:t + 1].mean()) / vol20[t - 251:t + 1].std(ddof=1)
        assert col(feats, "vol_z_252")[t] == pytest.approx(z, rel=1e-8)
        lv = np.log(v[t - 19:t + 1])
        assert col(feats, "volume_z_20")[t] == pytest.approx((lv[-1] - lv.mean()) / lv.std(ddof=1), rel=1e-8)
        assert col(feats, "drawdown_252")[t] == pytest.approx(p[t] / p[t - 251:t + 1].max() - 1, abs=1e-12)
        assert col(feats, "sma_ratio_200")[t] == pytest.approx(p[t] / p[t - 199:t + 1].mean() - 1, abs=1e-12)
        ups = downs = 0
        for s in range(t - 4, t + 1):
            sigma = np.std(r[s - 20:s], ddof=1)
            ups += r[s] > 2 * sigma
            downs += r[s] < -2 * sigma
        assert (col(feats, "burst_up_5d")[t], col(feats, "burst_down_5d")[t]) == (ups, downs)
        assert col(feats, "vol_accel")[t] == pytest.approx(vol20[t] - vol20[t - 5], rel=1e-8, abs=1e-12)


def test_zero_volume_gives_null_volume_z(bars):
    zero = compute_features(bars.head(300).with_columns(pl.lit(0.0).alias("volume")))
    assert zero["volume_z_20"].null_count() == 300


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(80, 400), cut_share=st.floats(0.1, 0.95))
def test_features_up_to_a_cut_ignore_later_prices(seed, n, cut_share):
    rng = np.random.default_rng(seed)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
    days = [dt.date(2000, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    frame = pl.DataFrame({"date": days, "ticker": "X", "adj_close": prices, "volume": rng.uniform(1e6, 2e6, n)})
    cut = int(n * cut_share)
    other = frame.with_columns(  # replace everything after the cut with a different future
        pl.when(pl.int_range(pl.len()) >= cut).then(pl.col("adj_close") * rng.uniform(0.5, 1.5, n))
        .otherwise(pl.col("adj_close")).alias("adj_close"))
    a = compute_features(frame).head(cut)
    b = compute_features(other).head(cut)
    assert a.equals(b)
    assert compute_features(frame.head(cut)).equals(a)


def test_range_with_lookback_equals_full_recompute(bars, feats):
    start, end = dt.date(2015, 6, 1), dt.date(2015, 6, 30)
    idx = bars["date"].search_sorted(start)
    want = feats.filter(pl.col("date").is_between(start, end))
    window = bars.slice(idx - LOOKBACK_SESSIONS, LOOKBACK_SESSIONS + want.height)
    got = features_for_range(window, start, end)
    assert got.height == want.height == 22 and compare_rows(want, got) == []


def test_range_near_history_start_is_exact(bars, feats):
    start, end = dt.date(1999, 3, 1), dt.date(1999, 3, 31)
    got = features_for_range(bars.filter(pl.col("date") <= end), start, end)
    assert got.equals(feats.filter(pl.col("date").is_between(start, end)))


def test_tickers_are_independent(bars):
    a = bars.slice(0, 700)
    b = bars.slice(2000, 700).with_columns(pl.lit("QQQ").alias("ticker"), pl.col("date").alias("date"))
    both = compute_features(pl.concat([b, a]).sample(fraction=1.0, shuffle=True, seed=1))
    assert both.filter(pl.col("ticker") == "SPY").equals(compute_features(a))
    assert both.filter(pl.col("ticker") == "QQQ").equals(compute_features(b))
