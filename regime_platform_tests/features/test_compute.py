"""Features: TA-Lib parity, the design's definitions, NULL warm-up, causality, incremental = full recompute.

The sample is the real S&P 500 index 1999-2018 bundled in `arch` (offline); TA-Lib is the oracle for RSI, MACD
and Bollinger bands, plain numpy loops and pandas rolling windows for everything else.
"""
from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import polars as pl
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from regime_platform.features.compute import (
    FEATURE_COLUMNS,
    LOOKBACK_SESSIONS,
    MODEL_FEATURES,
    compute_features,
    features_for_range,
)

TALIB_COLUMNS = ["rsi_14", "macd", "macd_signal", "macd_hist", "bb_upper", "bb_mid", "bb_lower"]
FIRST_VALID = {
    "ret_1d": 1, "ret_5d": 5, "ret_20d": 20, "vol_5d": 5, "vol_20d": 20, "vol_60d": 60,
    "vol_ratio_5_20": 20, "vol_accel": 25, "vol_z_252": 20 + 251, "volume_z_20": 19, "rsi_14": 14,
    "macd": 33, "macd_signal": 33, "macd_hist": 33, "macd_hist_pct": 33, "bb_upper": 19, "bb_mid": 19,
    "bb_lower": 19, "bb_pctb": 19, "bb_width": 19, "burst_up_5d": 25, "burst_down_5d": 25,
    "drawdown_252": 251, "sma_ratio_200": 199,
    # four half-lives of returns, the first of which is r[1]
    "downside_dev_hl10": 40, "downside_dev_hl21": 84, "sortino_hl10": 40, "sortino_hl21": 84}
RETURN_SHAPE = ["downside_dev_hl10", "downside_dev_hl21", "sortino_hl10", "sortino_hl21"]
SQRT252 = math.sqrt(252)


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    from arch.data import sp500

    raw = sp500.load().reset_index()
    return pl.from_pandas(raw).select(
        pl.col("Date").cast(pl.Date).alias("date"), pl.lit("SPY").alias("ticker"),
        pl.col("Adj Close").cast(pl.Float64).alias("adj_close"), pl.col("Volume").cast(pl.Float64).alias("volume"))


@pytest.fixture(scope="module")
def feats(bars) -> pl.DataFrame:
    return compute_features(bars)


def col(frame: pl.DataFrame, name: str) -> np.ndarray:
    """A column as float64 numpy, NULL as NaN."""
    return frame[name].cast(pl.Float64).to_numpy().astype(float)


def talib_reference(prices: np.ndarray) -> dict[str, np.ndarray]:
    macd, signal, hist = talib.MACD(prices, 12, 26, 9)
    upper, mid, lower = talib.BBANDS(prices, 20, 2, 2, 0)
    return {"rsi_14": talib.RSI(prices, 14), "macd": macd, "macd_signal": signal, "macd_hist": hist,
            "bb_upper": upper, "bb_mid": mid, "bb_lower": lower}


def assert_frames_close(want: pl.DataFrame, got: pl.DataFrame, tol: float) -> None:
    """Same keys in the same order, same NULL pattern, and |a − b| ≤ tol × max(1, |a|) everywhere."""
    assert got.columns == want.columns
    assert got.select("date", "ticker").equals(want.select("date", "ticker"))
    for c in FEATURE_COLUMNS:
        a, b = col(want, c), col(got, c)
        assert (np.isnan(a) == np.isnan(b)).all(), f"{c}: NULL pattern differs"
        both = ~np.isnan(a)
        if both.any():
            err = np.abs(a[both] - b[both]) / np.maximum(1.0, np.abs(a[both]))
            assert err.max() <= tol, f"{c}: {err.max():.2e} from a full recompute"


def random_walk(seed: int, n: int, ticker: str = "X") -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    days = [dt.date(2000, 1, 3) + dt.timedelta(days=i) for i in range(n)]
    return pl.DataFrame({"date": days, "ticker": ticker,
                         "adj_close": 100 * np.exp(np.cumsum(rng.normal(0, 0.015, n))),
                         "volume": rng.uniform(1e6, 2e6, n)})


# ------------------------------------------------------------------------------------------------ shape
def test_columns_types_order_and_model_subset(bars, feats):
    assert FEATURE_COLUMNS == [
        "ret_1d", "ret_5d", "ret_20d", "vol_5d", "vol_20d", "vol_60d", "vol_ratio_5_20", "vol_accel", "vol_z_252",
        "volume_z_20", "rsi_14", "macd", "macd_signal", "macd_hist", "macd_hist_pct", "bb_upper", "bb_mid",
        "bb_lower", "bb_pctb", "bb_width", "burst_up_5d", "burst_down_5d", "drawdown_252", "sma_ratio_200",
        *RETURN_SHAPE]
    assert MODEL_FEATURES == [c for c in FEATURE_COLUMNS
                              if c not in {"bb_upper", "bb_mid", "bb_lower", "macd", "macd_signal", "macd_hist"}]
    assert LOOKBACK_SESSIONS == 1000
    assert feats.columns == ["date", "ticker", *FEATURE_COLUMNS]
    assert feats.schema["date"] == pl.Date and feats.schema["ticker"] == pl.String
    assert all(feats.schema[c] == pl.Float64 for c in FEATURE_COLUMNS)
    assert feats.height == bars.height and feats["date"].equals(bars["date"])


def test_unsorted_input_with_extra_columns_comes_back_sorted(bars, feats):
    shuffled = bars.head(400).with_columns(pl.lit(1.0).alias("open")).sample(fraction=1.0, shuffle=True, seed=7)
    assert compute_features(shuffled).equals(feats.head(400))


def test_empty_input_gives_an_empty_frame_with_the_schema(bars, feats):
    empty = compute_features(bars.head(0))
    assert empty.height == 0 and empty.schema == feats.schema


def test_module_imports_neither_dagster_nor_talib():
    code = ("import sys, regime_platform.features.compute; "
            "bad = {'dagster', 'talib'} & {m.split('.')[0] for m in sys.modules}; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------------ TA-Lib parity
def test_talib_parity_on_the_sample(bars, feats):
    reference = talib_reference(bars["adj_close"].to_numpy())
    for name in TALIB_COLUMNS:
        got, expected = col(feats, name), reference[name]
        assert (np.isnan(got) == np.isnan(expected)).all(), f"{name}: NULL pattern differs from TA-Lib"
        rel = np.abs(got[250:] - expected[250:]) / np.abs(expected[250:])
        assert rel.max() < 1e-8, f"{name}: {rel.max():.2e} from TA-Lib after 250 sessions"
        valid = ~np.isnan(expected)  # the seeding is TA-Lib's, so the warm-up agrees as well
        err = np.abs(got[valid] - expected[valid]) / np.maximum(1.0, np.abs(expected[valid]))
        assert err.max() < 1e-8, f"{name}: {err.max():.2e} from TA-Lib during warm-up"


# ------------------------------------------------------------------------------------------ definitions
def test_definitions_against_plain_loops(bars, feats):
    p = bars["adj_close"].to_numpy()
    v = bars["volume"].to_numpy()
    r = np.r_[np.nan, np.diff(np.log(p))]
    ta = talib_reference(p)

    def vol(t, n):
        return np.std(r[t - n + 1:t + 1], ddof=1) * SQRT252

    # 2001-09-17, the 2008 crash, a calm 2017 day, and others
    rows = [300, 680, 1234, 2222, 2460, 2470, 4000, 4700, 5030]
    for t in rows:
        for k in (1, 5, 20):
            assert col(feats, f"ret_{k}d")[t] == pytest.approx(math.log(p[t] / p[t - k]), rel=1e-12, abs=1e-15)
        for n in (5, 20, 60):
            assert col(feats, f"vol_{n}d")[t] == pytest.approx(vol(t, n), rel=1e-10)
        assert col(feats, "vol_ratio_5_20")[t] == pytest.approx(vol(t, 5) / vol(t, 20), rel=1e-10)
        assert col(feats, "vol_accel")[t] == pytest.approx(vol(t, 20) - vol(t - 5, 20), rel=1e-8, abs=1e-12)
        history = np.array([vol(s, 20) for s in range(t - 251, t + 1)])
        z = (history[-1] - history.mean()) / history.std(ddof=1)
        assert col(feats, "vol_z_252")[t] == pytest.approx(z, rel=1e-8, abs=1e-12)
        lv = np.log(v[t - 19:t + 1])
        assert col(feats, "volume_z_20")[t] == pytest.approx((lv[-1] - lv.mean()) / lv.std(ddof=1), rel=1e-8)
        assert col(feats, "macd_hist_pct")[t] == pytest.approx(ta["macd_hist"][t] / p[t], rel=1e-8, abs=1e-15)
        band = ta["bb_upper"][t] - ta["bb_lower"][t]
        assert col(feats, "bb_pctb")[t] == pytest.approx((p[t] - ta["bb_lower"][t]) / band, rel=1e-8, abs=1e-12)
        assert col(feats, "bb_width")[t] == pytest.approx(band / ta["bb_mid"][t], rel=1e-8)
        assert col(feats, "drawdown_252")[t] == pytest.approx(p[t] / p[t - 251:t + 1].max() - 1, abs=1e-12)
        assert col(feats, "sma_ratio_200")[t] == pytest.approx(p[t] / p[t - 199:t + 1].mean() - 1, abs=1e-12)


def test_whole_columns_against_pandas_rolling(bars, feats):
    p = pd.Series(bars["adj_close"].to_numpy())
    r = np.log(p).diff()
    expected = {
        "ret_5d": np.log(p / p.shift(5)),
        "vol_20d": r.rolling(20).std(ddof=1) * SQRT252,
        "drawdown_252": p / p.rolling(252).max() - 1,
        "sma_ratio_200": p / p.rolling(200).mean() - 1,
    }
    for name, want in expected.items():
        want, got = want.to_numpy(), col(feats, name)
        assert (np.isnan(want) == np.isnan(got)).all(), name
        ok = ~np.isnan(want)
        assert np.allclose(got[ok], want[ok], rtol=1e-9, atol=1e-12), name


def ew_return_shape(prices: np.ndarray, half_life: int) -> dict[str, np.ndarray]:
    """The return-shape features the straightforward pandas way: ``ewm(halflife=...)`` of r and of min(r, 0)²."""
    r = np.log(pd.Series(prices)).diff()
    warm = 4 * half_life
    mean = r.ewm(halflife=half_life, min_periods=warm).mean()
    semi = (r.clip(upper=0) ** 2).ewm(halflife=half_life, min_periods=warm).mean() ** 0.5
    return {f"downside_dev_hl{half_life}": (semi * SQRT252).to_numpy(),
            f"sortino_hl{half_life}": (mean / semi * SQRT252).to_numpy()}


def test_return_shape_against_pandas_ewm(bars, feats):
    """Exact on 20 years of the S&P 500 (2000-02, 2008 and 2011 included) against pandas' ewm, warm-up included."""
    p = bars["adj_close"].to_numpy()
    for h in (10, 21):
        for name, want in ew_return_shape(p, h).items():
            got = col(feats, name)
            assert (np.isnan(want) == np.isnan(got)).all(), name
            ok = ~np.isnan(want)
            err = np.abs(got[ok] - want[ok]) / np.maximum(1.0, np.abs(want[ok]))
            assert err.max() < 1e-11, f"{name}: {err.max():.2e} from pandas ewm"
    # the definitions by hand at one date: weights 2^(-i/h) over every return so far, normalised
    t, r = 2460, np.r_[np.nan, np.diff(np.log(p))]
    for h in (10, 21):
        w = 0.5 ** (np.arange(t)[::-1] / h)  # r[1] … r[t]
        semi = math.sqrt(np.sum(w * np.minimum(r[1:t + 1], 0) ** 2) / w.sum())
        assert col(feats, f"downside_dev_hl{h}")[t] == pytest.approx(semi * SQRT252, rel=1e-10)
        assert col(feats, f"sortino_hl{h}")[t] == pytest.approx(np.sum(w * r[1:t + 1]) / w.sum() / semi * SQRT252,
                                                                rel=1e-9)
    # scale-free: the same series at a hundredth of the price gives the same values
    cents = compute_features(bars.with_columns(pl.col("adj_close") / 100))
    for name in RETURN_SHAPE:
        np.testing.assert_allclose(col(cents, name), col(feats, name), rtol=1e-9, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("cut", [100, 1300, 2460, 4000])
def test_return_shape_at_t_ignores_every_price_after_t(bars, feats, cut):
    """Prices after the cut doubled, crashed and shuffled: every return-shape value up to the cut is unchanged."""
    rng = np.random.default_rng(cut)
    later = bars["adj_close"].to_numpy()[cut + 1:]
    for other in (later * 2.0, later * np.linspace(1.0, 0.3, later.size), rng.permutation(later)):
        planted = bars.with_columns(pl.Series("adj_close", np.r_[bars["adj_close"].to_numpy()[:cut + 1], other]))
        got = compute_features(planted).head(cut + 1).select(RETURN_SHAPE)
        assert got.equals(feats.head(cut + 1).select(RETURN_SHAPE))
        assert not compute_features(planted).slice(cut + 1).select(RETURN_SHAPE).equals(
            feats.slice(cut + 1).select(RETURN_SHAPE))  # the change did reach the later rows


def test_burst_counts_against_a_loop(bars, feats):
    p = bars["adj_close"].to_numpy()
    r = np.r_[np.nan, np.diff(np.log(p))]
    n = len(p)
    up, down = np.full(n, np.nan), np.full(n, np.nan)
    for s in range(21, n):  # σ_s needs the 20 returns r[s-20 … s-1], the first of which is r[1]
        sigma = np.std(r[s - 20:s], ddof=1)
        up[s], down[s] = r[s] > 2 * sigma, r[s] < -2 * sigma
    want_up = np.array([up[t - 4:t + 1].sum() if t >= 25 else np.nan for t in range(n)])
    want_down = np.array([down[t - 4:t + 1].sum() if t >= 25 else np.nan for t in range(n)])
    np.testing.assert_array_equal(col(feats, "burst_up_5d"), want_up)
    np.testing.assert_array_equal(col(feats, "burst_down_5d"), want_down)
    assert np.nanmax(want_up) >= 2 and np.nanmax(want_down) >= 2  # the sample has bursts to count


# ------------------------------------------------------------------------------------------------ warm-up
def test_warm_up_is_null_never_zero_or_nan(feats):
    first_valid = {c: feats[c].is_not_null().arg_max() for c in FEATURE_COLUMNS}
    assert first_valid == FIRST_VALID
    for c in FEATURE_COLUMNS:
        values = feats[c]
        assert values[:FIRST_VALID[c]].null_count() == FIRST_VALID[c], c
        assert values[FIRST_VALID[c]:].null_count() == 0, c
        assert not values.is_nan().any() and not values.is_infinite().any(), c


def test_short_history_is_all_null_where_windows_do_not_fit():
    short = compute_features(random_walk(3, 40))
    for c in FEATURE_COLUMNS:
        assert short[c].null_count() == min(40, FIRST_VALID[c]), c
        assert not short[c].is_nan().any(), c


def test_zero_volume_gives_null_volume_z(bars, feats):
    zero = compute_features(bars.head(300).with_columns(pl.lit(0.0).alias("volume")))
    assert zero["volume_z_20"].null_count() == 300
    one_gap = compute_features(bars.head(300).with_columns(
        pl.when(pl.int_range(pl.len()) == 100).then(0.0).otherwise(pl.col("volume")).alias("volume")))
    nulls = one_gap["volume_z_20"].is_null().to_numpy()
    assert (np.flatnonzero(nulls[19:]) + 19).tolist() == list(range(100, 120))  # every window holding day 100
    others = [c for c in FEATURE_COLUMNS if c != "volume_z_20"]
    assert one_gap.select(others).equals(feats.head(300).select(others))


def test_flat_prices_give_null_not_nan(bars):
    flat = compute_features(bars.head(60).with_columns(pl.lit(100.0).alias("adj_close")))
    assert flat["rsi_14"].null_count() == 60  # 0/0: undefined (TA-Lib says 0), so NULL
    assert flat["bb_pctb"].null_count() == 60 and flat["vol_20d"][20:].to_list() == [0.0] * 40
    for c in FEATURE_COLUMNS:
        assert not flat[c].is_nan().any() and not flat[c].is_infinite().any(), c


# ------------------------------------------------------------------------------------------------ causality
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(80, 400), cut_share=st.floats(0.1, 0.95))
def test_features_up_to_a_cut_ignore_later_prices(seed, n, cut_share):
    frame = random_walk(seed, n)
    cut = int(n * cut_share)
    rng = np.random.default_rng(seed + 1)
    later = pl.int_range(pl.len()) >= cut
    other = frame.with_columns(  # a different future: other prices and volumes after the cut
        pl.when(later).then(pl.col("adj_close") * rng.uniform(0.5, 1.5, n)).otherwise(pl.col("adj_close"))
        .alias("adj_close"),
        pl.when(later).then(pl.col("volume") * rng.uniform(0.0, 3.0, n)).otherwise(pl.col("volume"))
        .alias("volume"))
    a = compute_features(frame).head(cut)
    assert compute_features(other).head(cut).equals(a)
    assert compute_features(frame.head(cut)).equals(a)


# ------------------------------------------------------------------------------------------ incremental
@pytest.mark.parametrize("start, end", [
    (dt.date(2015, 6, 1), dt.date(2015, 6, 30)),
    (dt.date(2008, 9, 1), dt.date(2008, 12, 31)),
    (dt.date(2018, 12, 3), dt.date(2018, 12, 31)),
])
def test_range_with_lookback_equals_full_recompute(bars, feats, start, end):
    first = bars["date"].search_sorted(start)
    last = bars["date"].search_sorted(end, side="right")
    assert first >= LOOKBACK_SESSIONS
    window = bars.slice(first - LOOKBACK_SESSIONS, LOOKBACK_SESSIONS + last - first)
    got = features_for_range(window, start, end)
    want = feats.filter(pl.col("date").is_between(start, end))
    assert got.height == want.height == last - first
    assert got["date"].min() >= start and got["date"].max() <= end
    assert_frames_close(want, got, tol=1e-12)


@pytest.mark.parametrize("start, end", [
    (dt.date(1999, 1, 4), dt.date(1999, 1, 29)),
    (dt.date(1999, 3, 1), dt.date(1999, 3, 31)),
    (dt.date(2001, 3, 1), dt.date(2001, 3, 30)),  # ~540 sessions in: a lookback cut short by history's start
])
def test_range_near_history_start_is_exact(bars, feats, start, end):
    history = bars.filter(pl.col("date") <= end)
    window = history.tail(min(history.height, LOOKBACK_SESSIONS + history.filter(pl.col("date") >= start).height))
    assert window["date"][0] == bars["date"][0]
    got = features_for_range(window, start, end)
    assert got.equals(feats.filter(pl.col("date").is_between(start, end)))


# ------------------------------------------------------------------------------------------------ tickers
def test_tickers_are_independent(bars):
    spy = bars.slice(0, 700)
    # a second ticker on the very same dates, with other prices and volumes; a third that starts later
    qqq = bars.slice(2000, 700).with_columns(spy["date"].alias("date"), pl.lit("QQQ").alias("ticker"))
    iwm = random_walk(11, 300, "IWM").with_columns(spy["date"].slice(400, 300).alias("date"))
    both = compute_features(pl.concat([qqq, iwm, spy]).sample(fraction=1.0, shuffle=True, seed=1))
    assert both["ticker"].unique(maintain_order=True).to_list() == ["IWM", "QQQ", "SPY"]
    for ticker, alone in (("SPY", spy), ("QQQ", qqq), ("IWM", iwm)):
        assert both.filter(pl.col("ticker") == ticker).equals(compute_features(alone)), ticker
