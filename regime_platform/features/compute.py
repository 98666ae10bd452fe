"""Causal technical features of daily prices, in polars, for one or many tickers.

Every value at session t uses prices up to t only, and is NULL (never 0, never NaN) until its whole window
exists. RSI, MACD and Bollinger bands equal TA-Lib's: an EMA starts as the simple average of its first n
values (TA-Lib's seeding), which an EMA started at the first price would miss by ~3e-7.

An undefined value (0/0 or x/0: a flat window) is NULL too, which is where this departs from TA-Lib: TA-Lib's RSI
is 0 while no price has moved yet, ours is NULL until the first move. polars only: no dagster, no TA-Lib here.
"""
from __future__ import annotations

import datetime as dt

import polars as pl

from regime_platform.calendar import SQRT_SESSIONS_PER_YEAR
from regime_platform.settings import SettingsError
from regime_platform.storage.tables import FEATURE_COLUMNS

# Index-point columns are stored for charts and TA-Lib parity; a scaler fit on early years extrapolates them.
PRICE_LEVEL_COLUMNS = ["bb_upper", "bb_mid", "bb_lower", "macd", "macd_signal", "macd_hist"]
MODEL_FEATURES = [c for c in FEATURE_COLUMNS if c not in PRICE_LEVEL_COLUMNS]
# The default model inputs: one scale-free feature per concept, chosen before any test year was seen. Short and
# monthly momentum (ret_5d, ret_20d), the volatility level (vol_20d), its change (vol_ratio_5_20) and its place in
# the past year (vol_z_252), volume (volume_z_20), trend acceleration (macd_hist_pct), crash days (burst_down_5d),
# distance from the year's peak (drawdown_252) and from the 200-day mean (sma_ratio_200). Left out: near-duplicates
# on the first training span (2001-2006, |correlation| >= 0.8: vol_5d, vol_60d and bb_width with vol_20d; rsi_14
# with ret_20d; bb_pctb with rsi_14), ret_1d (one noisy day; the window's vol_* summarize daily moves), vol_accel
# (a difference of vol_20d, which the window already holds) and burst_up_5d (rare, and not a risk-off signal).
# The return-shape columns (added later) are not in it: on 2001-2006 downside_dev_hl10/21 correlate 0.93 with
# vol_20d and -0.88/-0.92 with drawdown_252; sortino_hl10/21 pass the 0.8 rule narrowly (0.76 with ret_20d, 0.78
# with sma_ratio_200), left for a measured change of every model's default inputs.
COMPACT_FEATURES = ["ret_5d", "ret_20d", "vol_20d", "vol_ratio_5_20", "vol_z_252", "volume_z_20", "macd_hist_pct",
                    "burst_down_5d", "drawdown_252", "sma_ratio_200"]
FEATURE_SETS = {"compact": COMPACT_FEATURES, "scale_free": MODEL_FEATURES}


def model_feature_set(spec: str) -> list[str]:
    """The model inputs a REGIME_FEATURES value names: `compact`, `scale_free`, or a comma-separated list of
    scale-free feature columns (in the order of FEATURE_COLUMNS). Raises SettingsError naming what is wrong."""
    spec = spec.strip()
    if spec in FEATURE_SETS:
        return list(FEATURE_SETS[spec])
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in FEATURE_COLUMNS]
    levels = [n for n in names if n in PRICE_LEVEL_COLUMNS]
    if not names or unknown:
        raise SettingsError(f"REGIME_FEATURES={spec!r}: {', '.join(unknown) or 'no feature'} is not a feature column; "
                         f"use {' or '.join(FEATURE_SETS)} or a comma-separated list from: {', '.join(MODEL_FEATURES)}.")
    if levels:
        raise SettingsError(f"REGIME_FEATURES={spec!r}: {', '.join(levels)} are in index points, which a scaler fit on "
                         "early years extrapolates; use scale-free columns (macd_hist_pct, bb_pctb, bb_width).")
    return [c for c in MODEL_FEATURES if c in names]

# Rows to read before a range so that computing the range alone equals a full recompute to 1e-12:
# the slowest recursion is the exponentially weighted return shape at half-life 21, whose weight on rows older than
# the lookback is 2^(-1000/21) ≈ 5e-15 (MACD's EMA(26), decay 25/27 a day, needed 600: 400 sessions left 8e-12 in
# macd_signal, 450 left 5e-13); the longest finite window, vol_z_252, needs 271 rows. Measured on the S&P 500
# sample (2004, 2008, 2010, 2015 and 2018 ranges): 600 sessions leave 1e-8 in sortino_hl21, 800 leave 2e-11, 900 leave
# 1.2e-12, 1000 leave 2e-14 (and 5e-14 in volume_z_20, rolling-sum rounding).
LOOKBACK_SESSIONS = 1000

VOL_Z_WINDOW = 252  # sessions of vol_z_252's z-score (the feature's name says 252, whatever a year is)
DRAWDOWN_WINDOW = 252  # sessions of drawdown_252's running peak (likewise)
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
RSI_PERIOD = 14
BB_PERIOD, BB_DEVS = 20, 2.0
BURST_SIGMAS, BURST_LOOKBACK, BURST_WINDOW = 2.0, 20, 5
# Return shape as the statistical jump model literature measures it (Shu, Yu & Mulvey 2024): exponentially weighted
# (half-life h sessions, pandas' ``ewm(halflife=h)`` weights normalised over every return so far) mean of r and of
# min(r, 0)², on daily log returns. downside_dev_hl{h} = sqrt(EW mean of min(r, 0)²) × sqrt(252) (annualised like
# vol_*); sortino_hl{h} = EW mean of r / that downside deviation (both per session, so × sqrt(252) annualises it
# too). NULL until EW_WARMUP_HALF_LIVES half-lives of returns exist (94 % of an infinite history's weight).
# Not the jump labeler's own inputs (labels.labelers.ewm_return_shape: recursive weights from a first return of 0,
# downside deviation floored at 1e-4 a day, as its fits were measured with); these are model inputs, NULL in warm-up.
EW_HALF_LIVES = (10, 21)
EW_WARMUP_HALF_LIVES = 4

_IDX = "__row"


def _by_ticker(expr: pl.Expr) -> pl.Expr:
    return expr.over("ticker")


def seeded_ema(x: pl.Expr, period: int, seed_index: int, alpha: float | None = None,
               seed_period: int | None = None) -> pl.Expr:
    """TA-Lib's EMA: NULL before `seed_index`, the mean of the `seed_period` values ending there at it,
    then value[t] = value[t-1] + alpha × (x[t] − value[t-1]). alpha defaults to 2 / (period + 1)."""
    alpha = 2.0 / (period + 1) if alpha is None else alpha
    seed = _by_ticker(x.rolling_mean(seed_period or period))
    row = pl.col(_IDX)
    started = pl.when(row < seed_index).then(None).when(row == seed_index).then(seed).otherwise(x)
    return _by_ticker(started.ewm_mean(alpha=alpha, adjust=False, min_samples=1))


def _rolling_z(x: pl.Expr, n: int) -> pl.Expr:
    return (x - _by_ticker(x.rolling_mean(n))) / _by_ticker(x.rolling_std(n))


def _ew_mean(x: pl.Expr, half_life: int) -> pl.Expr:
    """pandas' ``x.ewm(halflife=half_life, min_periods=EW_WARMUP_HALF_LIVES × half_life).mean()``, per ticker."""
    return _by_ticker(x.ewm_mean(half_life=half_life, adjust=True, min_samples=EW_WARMUP_HALF_LIVES * half_life,
                                 ignore_nulls=False))


def _return_shape_exprs(r: pl.Expr) -> list[pl.Expr]:
    downside = r.clip(upper_bound=0.0).pow(2)  # NULL stays NULL (the first session has no return)
    semi = {h: _ew_mean(downside, h).sqrt() for h in EW_HALF_LIVES}
    return [*[(semi[h] * SQRT_SESSIONS_PER_YEAR).alias(f"downside_dev_hl{h}") for h in EW_HALF_LIVES],
            *[(_ew_mean(r, h) / semi[h] * SQRT_SESSIONS_PER_YEAR).alias(f"sortino_hl{h}") for h in EW_HALF_LIVES]]


def _feature_exprs() -> list[pl.Expr]:
    p = pl.col("adj_close")
    r = pl.col("__r")
    vol = {n: _by_ticker(r.rolling_std(n)) * SQRT_SESSIONS_PER_YEAR for n in (5, 20, 60)}
    row = pl.col(_IDX)
    return [
        *[_by_ticker((p / p.shift(k)).log()).alias(f"ret_{k}d") for k in (1, 5, 20)],
        *[v.alias(f"vol_{n}d") for n, v in vol.items()],
        (vol[5] / vol[20]).alias("vol_ratio_5_20"),
        (vol[20] - _by_ticker(vol[20].shift(5))).alias("vol_accel"),
        _rolling_z(vol[20], VOL_Z_WINDOW).alias("vol_z_252"),
        _rolling_z(pl.when(pl.col("volume") > 0).then(pl.col("volume").log()), 20).alias("volume_z_20"),
        # Wilder's RSI: averages of gains and losses seeded with simple means of the first 14 changes.
        (100 * pl.col("__gain_avg") / (pl.col("__gain_avg") + pl.col("__loss_avg"))).alias("rsi_14"),
        pl.when(row >= MACD_SLOW + MACD_SIGNAL - 2).then(pl.col("__macd")).alias("macd"),
        pl.when(row >= MACD_SLOW + MACD_SIGNAL - 2).then(pl.col("__signal")).alias("macd_signal"),
        pl.when(row >= MACD_SLOW + MACD_SIGNAL - 2).then(pl.col("__macd") - pl.col("__signal")).alias("macd_hist"),
        pl.when(row >= MACD_SLOW + MACD_SIGNAL - 2).then((pl.col("__macd") - pl.col("__signal")) / p)
        .alias("macd_hist_pct"),
        (pl.col("__bb_mid") + BB_DEVS * pl.col("__bb_std")).alias("bb_upper"),
        pl.col("__bb_mid").alias("bb_mid"),
        (pl.col("__bb_mid") - BB_DEVS * pl.col("__bb_std")).alias("bb_lower"),
        ((p - (pl.col("__bb_mid") - BB_DEVS * pl.col("__bb_std"))) / (2 * BB_DEVS * pl.col("__bb_std")))
        .alias("bb_pctb"),
        (2 * BB_DEVS * pl.col("__bb_std") / pl.col("__bb_mid")).alias("bb_width"),
        _by_ticker((r > BURST_SIGMAS * pl.col("__sigma_before")).cast(pl.Float64).rolling_sum(BURST_WINDOW))
        .alias("burst_up_5d"),
        _by_ticker((r < -BURST_SIGMAS * pl.col("__sigma_before")).cast(pl.Float64).rolling_sum(BURST_WINDOW))
        .alias("burst_down_5d"),
        (p / _by_ticker(p.rolling_max(DRAWDOWN_WINDOW)) - 1).alias("drawdown_252"),
        (p / _by_ticker(p.rolling_mean(200)) - 1).alias("sma_ratio_200"),
        *_return_shape_exprs(r),
    ]


def compute_features(ohlcv: pl.DataFrame) -> pl.DataFrame:
    """Features of every input row: columns date, ticker, *FEATURE_COLUMNS, sorted by ticker and date.

    Input: at least date, ticker, adj_close, volume; any order, any number of tickers.
    """
    return feature_query(ohlcv).collect()


def feature_query(ohlcv: pl.DataFrame) -> pl.LazyFrame:
    """:func:`compute_features` as a lazy query: selecting some columns computes only what they need."""
    p = pl.col("adj_close")
    change = _by_ticker(p - p.shift(1))
    slow_seed = MACD_SLOW - 1  # both MACD EMAs start at index 25 (the fast one from the 12 values ending there)
    frame = (
        ohlcv.lazy()
        .select("date", "ticker", pl.col("adj_close").cast(pl.Float64), pl.col("volume").cast(pl.Float64))
        .sort("ticker", "date")
        .with_columns(_by_ticker(pl.int_range(pl.len())).alias(_IDX))
        .with_columns(
            _by_ticker((p / p.shift(1)).log()).alias("__r"),
            seeded_ema(change.clip(lower_bound=0), RSI_PERIOD, RSI_PERIOD, alpha=1 / RSI_PERIOD).alias("__gain_avg"),
            seeded_ema((-change).clip(lower_bound=0), RSI_PERIOD, RSI_PERIOD, alpha=1 / RSI_PERIOD)
            .alias("__loss_avg"),
            (seeded_ema(p, MACD_FAST, slow_seed) - seeded_ema(p, MACD_SLOW, slow_seed)).alias("__macd"),
            _by_ticker(p.rolling_mean(BB_PERIOD)).alias("__bb_mid"),
            _by_ticker(p.rolling_std(BB_PERIOD, ddof=0)).alias("__bb_std"),
        )
        .with_columns(
            seeded_ema(pl.col("__macd"), MACD_SIGNAL, slow_seed + MACD_SIGNAL - 1).alias("__signal"),
            _by_ticker(pl.col("__r").shift(1).rolling_std(BURST_LOOKBACK)).alias("__sigma_before"),
        )
        .select("date", "ticker", *_feature_exprs())
        .with_columns([pl.col(c).cast(pl.Float64).fill_nan(None) for c in FEATURE_COLUMNS])
        # a ratio of two zero-width windows is ±inf: undefined, so NULL like every other missing value
        .with_columns([pl.when(pl.col(c).is_infinite()).then(None).otherwise(pl.col(c)).alias(c)
                       for c in FEATURE_COLUMNS])
    )
    return frame


def features_for_range(ohlcv_with_lookback: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Features of the sessions start … end, computed on bars that include LOOKBACK_SESSIONS before start."""
    return compute_features(ohlcv_with_lookback).filter(pl.col("date").is_between(start, end))
