"""Causal technical features of daily prices, in polars and numpy, for one or many tickers.

Every value at session t uses prices up to t only, and is NULL (never 0, never NaN) until its whole window
exists. RSI, MACD and Bollinger bands equal TA-Lib's: an EMA starts as the simple average of its first n
values (TA-Lib's seeding), which an EMA started at the first price would miss by ~3e-7.

An undefined value (0/0 or x/0: a flat window) is NULL too, which is where this departs from TA-Lib: TA-Lib's RSI
is 0 while no price has moved yet, ours is NULL until the first move. The recursive averages and the Bollinger
window run per ticker over contiguous numpy slices (:mod:`regime_platform.features.kernels`), the rest in polars; no
dagster, no TA-Lib here.
"""
from __future__ import annotations

import datetime as dt
import math
import threading

import numpy as np
import polars as pl
import pyarrow as pa

from regime_platform.calendar import SQRT_SESSIONS_PER_YEAR
from regime_platform.features import kernels
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
# sample (2004, 2008, 2010, 2015 and 2018 ranges): 600 sessions leave 1e-8 in sortino_hl21, 800 leave 6e-11, 900 leave
# 1.2e-12, 1000 leave 2e-14; the finite windows (features.kernels.window_mean_std) depend on their own values alone,
# so they agree exactly.
LOOKBACK_SESSIONS = 1000

VOL_Z_WINDOW = 252  # sessions of vol_z_252's z-score (the feature's name says 252, whatever a year is)
DRAWDOWN_WINDOW = 252  # sessions of drawdown_252's running peak (likewise)
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
RSI_PERIOD = 14
BB_PERIOD, BB_DEVS = 20, 2.0
VOL_WINDOWS, VOLUME_Z_WINDOW, SMA_WINDOW = (5, 20, 60), 20, 200
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
# Feature columns that are sums or differences of kernel outputs, each finite or NULL (see _columns)
_FINITE_BY_CONSTRUCTION = {"macd", "macd_signal", "macd_hist", "bb_upper", "bb_mid", "bb_lower"}


def _by_ticker(expr: pl.Expr) -> pl.Expr:
    return expr.over("ticker")


def _lag(x: pl.Expr, k: int) -> pl.Expr:
    """x k sessions earlier in the same ticker: a shift over the sorted frame, NULL in each ticker's first k rows."""
    return pl.when(pl.col(_IDX) >= k).then(x.shift(k))


def _values(s: pl.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """A column as float64 numpy (NULL as NaN) and its validity (None: no NULL), so a NULL (a gap) stays apart from a
    NaN."""
    if not s.null_count():
        return s.cast(pl.Float64).to_numpy(), None
    return s.cast(pl.Float64).fill_null(np.nan).to_numpy(), s.is_not_null().to_numpy()


def _columns(clean: bool, **parts: tuple[np.ndarray, np.ndarray]) -> pl.Series:
    """numpy results (values, validity) as one struct column, NULL where invalid or not finite (a NaN input poisons a
    recursion until here), so every kernel output is finite or NULL; `clean` (every input finite and valid) says the
    valid values are finite already."""
    fields = {}
    for name, (values, ok) in parts.items():
        bits = np.packbits(ok if clean else ok & np.isfinite(values), bitorder="little")  # Arrow's validity bitmap
        fields[name] = pa.Array.from_buffers(pa.float64(), values.size, [pa.py_buffer(bits), pa.py_buffer(values)])
    return pl.Series(pa.StructArray.from_arrays(list(fields.values()), names=list(fields)))


class _Inputs:
    """The sorted frame's prices and volumes as numpy (values, validity), taken once, and what several kernels share,
    computed on first use: each kernel reads these rather than the column polars hands its UDF, which the streaming
    engine delivers in pieces (a copy per call)."""

    def __init__(self, bars: pl.DataFrame, starts: np.ndarray):
        self.starts = starts
        self.prices = _values(bars["adj_close"].rechunk())
        self.volume = _values(bars["volume"].rechunk())
        self._returns: tuple[np.ndarray, np.ndarray] | None = None
        self._stds: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()  # polars may run two UDFs at once: compute each shared array once

    def returns(self) -> tuple[np.ndarray, np.ndarray]:
        """r_t = ln(P_t / P_{t-1}), NULL in each ticker's first session (and next to a NULL price)."""
        with self._lock:
            if self._returns is None:
                self._returns = self._compute_returns()
            return self._returns

    def _compute_returns(self) -> tuple[np.ndarray, np.ndarray]:
        p, valid = self.prices
        r = np.empty(p.size)
        r[:1] = np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            np.log(p[1:] / p[:-1], out=r[1:])
        ok = kernels.from_row(self.starts, 1, p.size)
        if valid is not None:
            ok[1:] &= valid[1:] & valid[:-1]
        r[~ok] = np.nan
        return r, ok

    def return_std(self, n: int) -> np.ndarray:
        """The std (ddof=1) of the n returns ending at each row, NaN where the window holds a NULL or NaN."""
        returns = self.returns()[0]
        with self._lock:
            if n not in self._stds:
                self._stds[n] = kernels.window_mean_std(returns, n)[1]
            return self._stds[n]


def _per_ticker(after: pl.Expr, kernel, *fields: str) -> pl.Expr:
    """`kernel()` (numpy over every ticker at once, reading :class:`_Inputs`) as one struct column of `fields`; `after`
    is a column it follows in the query (its values are not read)."""
    return after.map_batches(lambda _: kernel(), return_dtype=pl.Struct(dict.fromkeys(fields, pl.Float64)))


def _clean(x: np.ndarray, valid: np.ndarray | None) -> bool:
    """Every value valid and finite (a NaN or ±inf makes the sum non-finite; so may an overflow: then checked)."""
    return valid is None and (bool(np.isfinite(np.sum(x))) or bool(np.isfinite(x).all()))


def _rsi_averages(p: np.ndarray, valid: np.ndarray | None, starts: np.ndarray) -> pl.Series:
    # Wilder's RSI: averages of gains and losses seeded with simple means of the first 14 changes.
    change = np.empty(p.size)
    change[:1] = np.nan
    np.subtract(p[1:], p[:-1], out=change[1:])
    ok = np.ones(p.size, dtype=bool)
    if valid is not None:
        np.logical_and(valid[1:], valid[:-1], out=ok[1:])
    ok[starts[:-1]] = False  # a ticker's first session has no change
    gain = np.maximum(change, 0.0)
    loss = np.subtract(gain, change, out=change)  # max(-change, 0), exactly
    return _columns(_clean(p, valid), **{side: kernels.seeded_ema(x, ok, starts, 1 / RSI_PERIOD, RSI_PERIOD, RSI_PERIOD)
                                         for side, x in (("gain", gain), ("loss", loss))})


def _macd_lines(p: np.ndarray, valid: np.ndarray | None, starts: np.ndarray) -> pl.Series:
    slow_seed = MACD_SLOW - 1  # both MACD EMAs start at index 25 (the fast one from the 12 values ending there)
    macd, macd_ok = kernels.ema_difference(p, valid, starts, MACD_FAST, MACD_SLOW, slow_seed)
    signal_seed = slow_seed + MACD_SIGNAL - 1  # the signal starts at index 33, and the MACD columns with it
    signal = kernels.seeded_ema(macd, macd_ok, starts, 2 / (MACD_SIGNAL + 1), signal_seed, MACD_SIGNAL)
    return _columns(_clean(p, valid), macd=(macd, macd_ok & kernels.from_row(starts, signal_seed, p.size)),
                    signal=signal)


def _bollinger(p: np.ndarray, valid: np.ndarray | None, starts: np.ndarray) -> pl.Series:
    mid, std = kernels.window_mean_std(p, BB_PERIOD, ddof=0)  # BBANDS: the population std; NaN where a window has NULL
    whole = kernels.from_row(starts, BB_PERIOD - 1, p.size)
    return _columns(_clean(p, valid), mid=(mid, whole), std=(std, whole))


def _windows(values: dict[str, tuple[np.ndarray, int]], starts: np.ndarray, clean: bool) -> pl.Series:
    """Window results (name: (values, n)) as struct fields, NULL until the ticker's window of n exists or where the
    window holds a NULL (a NaN here) or a NaN."""
    return _columns(clean, **{name: (v, kernels.from_row(starts, n - 1, v.size)) for name, (v, n) in values.items()})


def _volatility(inputs: _Inputs) -> pl.Series:
    return _windows({f"std{n}": (inputs.return_std(n), n) for n in VOL_WINDOWS}, inputs.starts, False)


def _vol_z_window(inputs: _Inputs) -> pl.Series:
    # vol_20d's own 252-session window; vol_20d is NaN where its 20 returns are not all there, so is this then
    mean, std = kernels.window_mean_std(inputs.return_std(20) * SQRT_SESSIONS_PER_YEAR, VOL_Z_WINDOW)
    return _windows({"meanz": (mean, VOL_Z_WINDOW), "stdz": (std, VOL_Z_WINDOW)}, inputs.starts, False)


def _log_volume_window(inputs: _Inputs) -> pl.Series:
    volume, _ = inputs.volume
    with np.errstate(invalid="ignore", divide="ignore"):
        log_volume = np.where(volume > 0, np.log(volume), np.nan)  # NULL where volume ≤ 0 or NULL (NaN > 0 is False)
    mean, std = kernels.window_mean_std(log_volume, VOLUME_Z_WINDOW)
    return _windows({"meanlv": (mean, VOLUME_Z_WINDOW), "stdlv": (std, VOLUME_Z_WINDOW)}, inputs.starts, False)


def _price_mean(inputs: _Inputs) -> pl.Series:
    mean, _ = kernels.window_mean_std(inputs.prices[0], SMA_WINDOW, std=False)
    return _windows({"meansma": (mean, SMA_WINDOW)}, inputs.starts, _clean(*inputs.prices))


def _ew_means(inputs: _Inputs) -> pl.Series:
    """pandas' ``ewm(halflife=h, min_periods=EW_WARMUP_HALF_LIVES × h).mean()`` of r and of min(r, 0)², per ticker."""
    r, valid = inputs.returns()
    downside = np.minimum(r, 0.0) ** 2  # NULL stays NULL (the first session has no return)
    parts = {}
    for h in EW_HALF_LIVES:
        alpha = 1.0 - math.exp(-math.log(2.0) / h)
        parts[f"mean{h}"] = kernels.ew_mean(r, valid, inputs.starts, alpha, EW_WARMUP_HALF_LIVES * h)
        parts[f"down{h}"] = kernels.ew_mean(downside, valid, inputs.starts, alpha, EW_WARMUP_HALF_LIVES * h)
    return _columns(False, **parts)


def _return_shape_exprs() -> list[pl.Expr]:
    ew = pl.col("__ew").struct
    semi = {h: ew.field(f"down{h}").sqrt() for h in EW_HALF_LIVES}
    return [*[(semi[h] * SQRT_SESSIONS_PER_YEAR).alias(f"downside_dev_hl{h}") for h in EW_HALF_LIVES],
            *[(ew.field(f"mean{h}") / semi[h] * SQRT_SESSIONS_PER_YEAR).alias(f"sortino_hl{h}")
              for h in EW_HALF_LIVES]]


def _vol(n: int) -> pl.Expr:
    return pl.col("__vol").struct.field(f"std{n}") * SQRT_SESSIONS_PER_YEAR


def _feature_exprs() -> list[pl.Expr]:
    p = pl.col("adj_close")
    r = pl.col("__r")
    vol = {n: _vol(n) for n in VOL_WINDOWS}
    lv, vz = pl.col("__lv").struct, pl.col("__vz").struct
    row = pl.col(_IDX)
    rsi, macd, bb = pl.col("__rsi").struct, pl.col("__macd").struct, pl.col("__bb").struct
    gain, loss = rsi.field("gain"), rsi.field("loss")
    macd_line, signal = macd.field("macd"), macd.field("signal")
    mid, std = bb.field("mid"), bb.field("std")
    return [
        *[(p / _lag(p, k)).log().alias(f"ret_{k}d") for k in (1, 5, 20)],
        *[v.alias(f"vol_{n}d") for n, v in vol.items()],
        (vol[5] / vol[20]).alias("vol_ratio_5_20"),
        (vol[20] - _lag(vol[20], 5)).alias("vol_accel"),
        ((vol[20] - vz.field("meanz")) / vz.field("stdz")).alias("vol_z_252"),
        ((pl.when(pl.col("volume") > 0).then(pl.col("volume").log()) - lv.field("meanlv")) / lv.field("stdlv"))
        .alias("volume_z_20"),
        (100 * gain / (gain + loss)).alias("rsi_14"),
        macd_line.alias("macd"),
        signal.alias("macd_signal"),
        (macd_line - signal).alias("macd_hist"),
        ((macd_line - signal) / p).alias("macd_hist_pct"),
        (mid + BB_DEVS * std).alias("bb_upper"),
        mid.alias("bb_mid"),
        (mid - BB_DEVS * std).alias("bb_lower"),
        ((p - (mid - BB_DEVS * std)) / (2 * BB_DEVS * std)).alias("bb_pctb"),
        (2 * BB_DEVS * std / mid).alias("bb_width"),
        # counts of 0/1 are exact whatever the summation order, so a sum over the sorted frame is the ticker's own
        pl.when(row >= BURST_WINDOW - 1).then((r > BURST_SIGMAS * pl.col("__sigma_before")).cast(pl.Float64)
                                              .rolling_sum(BURST_WINDOW)).alias("burst_up_5d"),
        pl.when(row >= BURST_WINDOW - 1).then((r < -BURST_SIGMAS * pl.col("__sigma_before")).cast(pl.Float64)
                                              .rolling_sum(BURST_WINDOW)).alias("burst_down_5d"),
        (p / pl.when(row >= DRAWDOWN_WINDOW - 1).then(p.rolling_max(DRAWDOWN_WINDOW)) - 1).alias("drawdown_252"),
        (p / pl.col("__sma").struct.field("meansma") - 1).alias("sma_ratio_200"),
        *_return_shape_exprs(),
    ]


def compute_features(ohlcv: pl.DataFrame) -> pl.DataFrame:
    """Features of every input row: columns date, ticker, *FEATURE_COLUMNS, sorted by ticker and date.

    Input: at least date, ticker, adj_close, volume; any order, any number of tickers.
    """
    return feature_query(ohlcv).collect()


def _sorted_bars(ohlcv: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
    """The four input columns sorted by (ticker, date) — left as they are when they already are, as a warehouse read
    returns them — with each row's index within its ticker, and the offsets of each ticker's first row."""
    bars = ohlcv.select("date", "ticker", pl.col("adj_close").cast(pl.Float64), pl.col("volume").cast(pl.Float64))
    runs = bars["ticker"].rle().struct
    names, dates = runs.field("value"), bars["date"]
    in_order = (names.dtype == pl.String and not names.null_count() and not dates.null_count() and names.is_sorted()
                and names.n_unique() == names.len() and dates.dtype.is_temporal())
    if in_order:
        steps = np.diff(dates.to_physical().to_numpy())
        starts = kernels.ticker_starts(runs.field("len").to_numpy())
        steps[starts[1:-1] - 1] = 0  # a new ticker may start at an earlier date
        in_order = bool((steps >= 0).all())
    if not in_order:
        bars = bars.sort("ticker", "date")
        starts = kernels.ticker_starts(bars["ticker"].rle().struct.field("len").to_numpy())
    return bars, starts


def feature_query(ohlcv: pl.DataFrame) -> pl.LazyFrame:
    """:func:`compute_features` as a lazy query: selecting some columns computes only what they need.

    Shifts, 0/1 counts and maxima are computed over the sorted frame and masked in each ticker's first rows (equal to
    a per-ticker computation); the recursive averages (RSI, MACD, the EW return shape) and the rolling means and stds
    run in :mod:`regime_platform.features.kernels` over numpy (the recursions per ticker, the windows from their own
    values alone), each as a UDF of the query so that a column not selected is not computed; the burst counts' σ
    stays a polars window (its NULL against NaN decides a comparison)."""
    bars, starts = _sorted_bars(ohlcv)
    inputs = _Inputs(bars, starts)
    p, r = pl.col("adj_close"), pl.col("__r")

    def on_prices(kernel):
        return lambda: kernel(*inputs.prices, starts)

    frame = (
        bars.lazy()
        .with_columns(p.map_batches(lambda _: pl.Series(kernels.rows_within(starts)), return_dtype=pl.Int32)
                      .alias(_IDX))  # each row's index within its ticker, computed only if a feature needs it
        .with_columns(
            (p / _lag(p, 1)).log().alias("__r"),
            _per_ticker(p, on_prices(_rsi_averages), "gain", "loss").alias("__rsi"),
            _per_ticker(p, on_prices(_macd_lines), "macd", "signal").alias("__macd"),
            _per_ticker(p, on_prices(_bollinger), "mid", "std").alias("__bb"),
            _per_ticker(p, lambda: _price_mean(inputs), "meansma").alias("__sma"),
            _per_ticker(p, lambda: _log_volume_window(inputs), "meanlv", "stdlv").alias("__lv"),
            _per_ticker(p, lambda: _volatility(inputs), *[f"std{n}" for n in VOL_WINDOWS]).alias("__vol"),
            _per_ticker(p, lambda: _vol_z_window(inputs), "meanz", "stdz").alias("__vz"),
            _per_ticker(p, lambda: _ew_means(inputs), *[f"{k}{h}" for h in EW_HALF_LIVES for k in ("mean", "down")])
            .alias("__ew"),
        )
        .with_columns(_by_ticker(_lag(r, 1).rolling_std(BURST_LOOKBACK)).alias("__sigma_before"))
        .select("date", "ticker", *_feature_exprs())
        # NaN (0/0) and ±inf (a ratio of two zero-width windows) are undefined, so NULL like every other missing value;
        # sums and differences of the kernels' outputs (finite or NULL) need no check
        .with_columns([pl.when(pl.col(c).is_finite()).then(pl.col(c)).alias(c) for c in FEATURE_COLUMNS
                       if c not in _FINITE_BY_CONSTRUCTION])
    )
    return frame


def features_for_range(ohlcv_with_lookback: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Features of the sessions start … end, computed on bars that include LOOKBACK_SESSIONS before start."""
    return compute_features(ohlcv_with_lookback).filter(pl.col("date").is_between(start, end))
