"""features.kernels: the per-ticker numpy passes equal the polars window expressions they replace.

The references are polars' own per-ticker expressions (`.over("ticker")`), on random series with NULL gaps (in the
seed windows too), NaNs, and tickers of different lengths, some shorter than the seed.
"""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from regime_platform.features import kernels

TICKER_LENGTHS = [1, 7, 14, 15, 26, 40, 300, 1200]


def random_frame(seed: int, null_share: float, nan_share: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    lengths = rng.permutation(TICKER_LENGTHS)
    n = int(lengths.sum())
    x = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    x[rng.random(n) < nan_share] = np.nan
    frame = pl.DataFrame({"ticker": np.repeat([f"T{i}" for i in range(lengths.size)], lengths), "x": x})
    return frame.with_columns(null_where_not(rng.random(n) >= null_share, frame["x"]),
                              pl.int_range(pl.len()).over("ticker").alias("row"))


def null_where_not(keep: np.ndarray, values: pl.Series) -> pl.Series:
    return pl.select(pl.when(pl.lit(pl.Series(keep))).then(pl.lit(values)).alias(values.name)).to_series()


def kernel_inputs(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    starts = kernels.ticker_starts(frame["ticker"].rle().struct.field("len").to_numpy())
    return frame["x"].fill_null(np.nan).to_numpy().copy(), frame["x"].is_not_null().to_numpy(), starts


def assert_same(got: tuple[np.ndarray, np.ndarray], want: pl.Series, rel: float) -> None:
    """Same NULLs, same NaNs, values within rel × max(1, |want|)."""
    values, ok = got
    np.testing.assert_array_equal(ok, want.is_not_null().to_numpy())
    expected = want.fill_null(np.nan).to_numpy()
    np.testing.assert_array_equal(np.isnan(values[ok]), np.isnan(expected[ok]))
    both = ok & ~np.isnan(expected)
    assert both.sum() > 100
    err = np.abs(values[both] - expected[both]) / np.maximum(1.0, np.abs(expected[both]))
    assert err.max() < rel, f"{err.max():.2e}"


def polars_seeded_ema(alpha: float, seed_index: int, seed_period: int) -> pl.Expr:
    """The polars expression the kernel replaced: NULL before the seed, the seed, then ewm_mean(adjust=False)."""
    x, row = pl.col("x"), pl.col("row")
    seed = x.rolling_mean(seed_period).over("ticker")
    started = pl.when(row < seed_index).then(None).when(row == seed_index).then(seed).otherwise(x)
    return started.ewm_mean(alpha=alpha, adjust=False, min_samples=1).over("ticker")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("alpha, seed_index, seed_period", [(1 / 14, 14, 14), (2 / 13, 25, 12), (2 / 27, 25, 26),
                                                            (0.2, 33, 9)])
def test_seeded_ema_equals_polars_over_tickers(seed, alpha, seed_index, seed_period):
    frame = random_frame(seed, null_share=[0.0, 0.01, 0.05][seed % 3], nan_share=0.0005 if seed >= 3 else 0.0)
    want = frame.select(polars_seeded_ema(alpha, seed_index, seed_period)).to_series()
    assert_same(kernels.seeded_ema(*kernel_inputs(frame), alpha, seed_index, seed_period), want, rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_ema_difference_equals_two_polars_emas(seed):
    """MACD's line: one second-order pass where no value is missing, the two averages where one is."""
    frame = random_frame(seed, null_share=[0.0, 0.0005, 0.05][seed % 3], nan_share=0.0005 if seed >= 3 else 0.0)
    want = frame.select(polars_seeded_ema(2 / 13, 25, 12) - polars_seeded_ema(2 / 27, 25, 26)).to_series()
    assert_same(kernels.ema_difference(*kernel_inputs(frame), 12, 26, 25), want, rel=1e-12)
    values, valid, starts = kernel_inputs(frame)
    if valid.all():  # no NULL: the same with the validity left out
        np.testing.assert_array_equal(kernels.ema_difference(values, None, starts, 12, 26, 25)[0],
                                      kernels.ema_difference(values, valid, starts, 12, 26, 25)[0])


def test_seeded_ema_has_talib_seeding_and_ignores_later_rows():
    import talib

    x = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.02, 500)))
    got, ok = kernels.seeded_ema(x, np.ones(500, dtype=bool), np.array([0, 500]), 2 / 27, 25, 26)
    np.testing.assert_allclose(got, talib.EMA(x, 26), rtol=1e-13, equal_nan=True)
    assert ok.tolist() == [False] * 25 + [True] * 475
    head, _ = kernels.seeded_ema(x[:300], np.ones(300, dtype=bool), np.array([0, 300]), 2 / 27, 25, 26)
    np.testing.assert_array_equal(head, got[:300])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("half_life", [10, 21])
def test_ew_mean_equals_polars_over_tickers(seed, half_life):
    frame = random_frame(seed, null_share=[0.0, 0.01, 0.05][seed % 3], nan_share=0.0005 if seed >= 3 else 0.0)
    alpha = 1.0 - np.exp(-np.log(2.0) / half_life)
    want = frame.select(pl.col("x").ewm_mean(half_life=half_life, adjust=True, min_samples=4 * half_life,
                                             ignore_nulls=False).over("ticker")).to_series()
    assert_same(kernels.ew_mean(*kernel_inputs(frame), alpha, 4 * half_life), want, rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n, ddof", [(20, 0), (20, 1), (5, 1)])
def test_window_mean_std_equals_polars_rolling_over_tickers(seed, n, ddof):
    frame = random_frame(seed, null_share=0.002 * seed, nan_share=0.0005 if seed >= 2 else 0.0)
    x, valid, _ = kernel_inputs(frame)
    for at in np.random.default_rng(seed).integers(0, x.size - 40, 3):  # flat stretches (std exactly 0)
        x[at:at + 30], valid[at:at + 30] = 100.1 + at, True
    frame = frame.with_columns(null_where_not(valid, pl.Series("x", x)))
    got = dict(zip(("mean", "std"), kernels.window_mean_std(x, n, ddof)))
    want = frame.select(pl.col("x").rolling_mean(n).over("ticker").alias("mean"),
                        pl.col("x").rolling_std(n, ddof=ddof).over("ticker").alias("std"))
    whole = frame["row"].to_numpy() >= n - 1  # the caller masks each ticker's first n-1 rows
    for name in got:
        assert np.isnan(got[name][whole & want[name].is_null().to_numpy()]).all()  # a NULL in the window
        defined = whole & want[name].is_not_null().to_numpy()
        assert_same((got[name], defined), null_where_not(defined, want[name]), rel=1e-12)
    flat = whole & (want["std"].fill_null(1.0).to_numpy() == 0.0)
    assert flat.sum() >= 3 * (30 - n + 1) - 10 and (got["std"][flat] == 0.0).all()


def test_window_mean_alone_equals_the_mean_beside_the_std():
    x = 100 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.02, 3000)))
    for n in (5, 20, 200, 252):
        alone, none = kernels.window_mean_std(x, n, std=False)
        both, std = kernels.window_mean_std(x, n)
        assert none is None and std is not None
        np.testing.assert_array_equal(alone, both)
        np.testing.assert_allclose(alone[n - 1:], np.convolve(x, np.ones(n) / n, "valid"), rtol=1e-13)


def test_a_block_of_equal_length_tickers_equals_each_ticker_alone():
    """Equal-length neighbours are filtered as one 2-D block; a gap sends a ticker down the per-ticker path: every
    ticker's values are bit for bit those it gets alone."""
    rng = np.random.default_rng(5)
    x = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 4 * 600)))
    valid = np.ones(x.size, dtype=bool)
    valid[[0, 600, 1200, 1800]] = False  # a first session with no change, as the RSI inputs have
    valid[1500] = False  # the third ticker has a gap
    starts = np.array([0, 600, 1200, 1800, 2400])
    runs = {"ema": lambda v, ok, s: kernels.seeded_ema(v, ok, s, 1 / 14, 14, 14),
            "macd": lambda v, ok, s: kernels.ema_difference(v, ok, s, 12, 26, 25),
            "ew": lambda v, ok, s: kernels.ew_mean(v, ok, s, 1 - 0.5 ** (1 / 21), 84)}
    for name, run in runs.items():
        together, together_ok = run(x, valid, starts)
        for a, b in zip(starts[:-1], starts[1:]):
            alone, alone_ok = run(x[a:b], valid[a:b], np.array([0, b - a]))
            np.testing.assert_array_equal(together[a:b], alone, err_msg=name)
            np.testing.assert_array_equal(together_ok[a:b], alone_ok, err_msg=name)


def test_rows_within_and_starts():
    starts = kernels.ticker_starts(np.array([3, 1, 2]))
    assert starts.tolist() == [0, 3, 4, 6]
    assert kernels.rows_within(starts).tolist() == [0, 1, 2, 0, 0, 1]
    assert kernels.rows_within(kernels.ticker_starts(np.array([], dtype=np.int64))).tolist() == []
