"""Features benchmark: the platform's polars features against TA-Lib and against a straightforward pandas version.

    python benchmarks/bench_features.py                     # 200 tickers × 5,000 sessions = 1,000,000 rows
    python benchmarks/bench_features.py --tickers 20 --repeats 2

Data: a seeded geometric random walk per ticker (daily volatility switching between 0.8 % and 2.5 %), positive
volume, one frame of date, ticker, adj_close, volume — what `features` reads from market.ohlcv.
- **RSI + MACD + Bollinger bands**: `features.compute.feature_query` selecting rsi_14, macd, macd_signal,
  macd_hist, bb_upper, bb_mid, bb_lower (polars computes only what they need) against TA-Lib's RSI(14),
  MACD(12, 26, 9) and BBANDS(20, 2, 2) called per ticker on numpy arrays (the split by ticker included, as a user
  of TA-Lib pays it). Their values are compared first (1e-9 relative).
- **The whole feature set** (every column of market.features) against the same definitions written the
  straightforward pandas way (groupby ticker, rolling and ewm, the TA-Lib seeding), compared first as well.
Each timed --repeats times; min and median. Writes benchmarks/results/features.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import talib

from regime_platform.features import compute as fc
from regime_platform.storage.tables import FEATURE_COLUMNS

RESULTS = Path(__file__).parent / "results" / "features.json"
TA_COLUMNS = ["rsi_14", "macd", "macd_signal", "macd_hist", "bb_upper", "bb_mid", "bb_lower"]


def synthetic(tickers: int, sessions: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    vol = np.where(rng.random((tickers, sessions)).cumsum(axis=1) % 40 < 30, 0.008, 0.025)
    prices = 100 * np.exp(np.cumsum(rng.normal(0.0003, 1, (tickers, sessions)) * vol, axis=1))
    dates = pl.date_range(dt.date(1990, 1, 1), dt.date(1990, 1, 1) + dt.timedelta(days=sessions - 1), eager=True)
    return pl.DataFrame({
        "date": np.tile(dates.to_numpy(), tickers), "ticker": np.repeat([f"T{k:04d}" for k in range(tickers)], sessions),
        "adj_close": prices.ravel(), "volume": rng.integers(1_000_000, 5_000_000, tickers * sessions).astype(float)})


def talib_indicators(frame: pl.DataFrame) -> pl.DataFrame:
    parts = []
    for part in frame.partition_by("ticker", maintain_order=True):
        p = part["adj_close"].to_numpy()
        macd, signal, hist = talib.MACD(p, 12, 26, 9)
        upper, mid, lower = talib.BBANDS(p, 20, 2.0, 2.0)
        parts.append(pl.DataFrame({"rsi_14": talib.RSI(p, 14), "macd": macd, "macd_signal": signal,
                                   "macd_hist": hist, "bb_upper": upper, "bb_mid": mid, "bb_lower": lower}))
    return pl.concat(parts)


def _seeded_ewm(x: pd.Series, alpha: float, seed_index: int, seed_period: int) -> pd.Series:
    seed = x.rolling(seed_period).mean()
    started = x.copy()
    started.iloc[:seed_index] = np.nan
    started.iloc[seed_index] = seed.iloc[seed_index]
    return started.ewm(alpha=alpha, adjust=False, ignore_na=True).mean().where(np.arange(len(x)) >= seed_index)


def pandas_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Every feature column the straightforward pandas way, one ticker at a time."""
    out = []
    for ticker, g in frame.groupby("ticker", sort=True):
        p, v = g["adj_close"].reset_index(drop=True), g["volume"].reset_index(drop=True)
        r = np.log(p / p.shift(1))
        f = pd.DataFrame({"date": g["date"].to_numpy(), "ticker": ticker})
        for k in (1, 5, 20):
            f[f"ret_{k}d"] = np.log(p / p.shift(k))
        vol = {n: r.rolling(n).std() * np.sqrt(252) for n in (5, 20, 60)}
        for n, s in vol.items():
            f[f"vol_{n}d"] = s
        f["vol_ratio_5_20"] = vol[5] / vol[20]
        f["vol_accel"] = vol[20] - vol[20].shift(5)
        f["vol_z_252"] = (vol[20] - vol[20].rolling(252).mean()) / vol[20].rolling(252).std()
        lv = np.log(v.where(v > 0))
        f["volume_z_20"] = (lv - lv.rolling(20).mean()) / lv.rolling(20).std()
        change = p.diff()
        gain = _seeded_ewm(change.clip(lower=0), 1 / 14, 14, 14)
        loss = _seeded_ewm((-change).clip(lower=0), 1 / 14, 14, 14)
        f["rsi_14"] = 100 * gain / (gain + loss)
        macd = _seeded_ewm(p, 2 / 13, 25, 12) - _seeded_ewm(p, 2 / 27, 25, 26)
        signal = _seeded_ewm(macd, 2 / 10, 33, 9)
        f["macd"], f["macd_signal"], f["macd_hist"] = macd.where(signal.notna()), signal, macd - signal
        f["macd_hist_pct"] = (macd - signal) / p
        mid, std = p.rolling(20).mean(), p.rolling(20).std(ddof=0)
        f["bb_upper"], f["bb_mid"], f["bb_lower"] = mid + 2 * std, mid, mid - 2 * std
        f["bb_pctb"] = (p - (mid - 2 * std)) / (4 * std)
        f["bb_width"] = 4 * std / mid
        sigma = r.shift(1).rolling(20).std()
        f["burst_up_5d"] = (r > 2 * sigma).astype(float).where(sigma.notna() & r.notna()).rolling(5).sum()
        f["burst_down_5d"] = (r < -2 * sigma).astype(float).where(sigma.notna() & r.notna()).rolling(5).sum()
        f["drawdown_252"] = p / p.rolling(252).max() - 1
        f["sma_ratio_200"] = p / p.rolling(200).mean() - 1
        for h in (10, 21):
            mean = r.ewm(halflife=h, min_periods=4 * h).mean()
            semi = (r.clip(upper=0) ** 2).ewm(halflife=h, min_periods=4 * h).mean() ** 0.5
            f[f"downside_dev_hl{h}"], f[f"sortino_hl{h}"] = semi * np.sqrt(252), mean / semi * np.sqrt(252)
        out.append(f)
    return pd.concat(out, ignore_index=True).replace([np.inf, -np.inf], np.nan)


def largest_difference(ours: pl.DataFrame, theirs: pl.DataFrame, columns: list[str]) -> float:
    worst = 0.0
    for c in columns:
        a, b = ours[c].to_numpy().astype(float), np.asarray(theirs[c], dtype=float)
        both = ~np.isnan(a) & ~np.isnan(b)
        if both.sum() < 0.9 * (~np.isnan(a)).sum():
            raise AssertionError(f"{c}: the two implementations disagree on which rows are defined")
        worst = max(worst, float(np.max(np.abs(a[both] - b[both]) / np.maximum(1.0, np.abs(b[both])))))
    return worst


def timings(fn, repeats: int) -> dict:
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - began)
    return {"min": round(min(seconds), 3), "median": round(statistics.median(seconds), 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickers", type=int, default=200)
    ap.add_argument("--sessions", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    load_before = [round(x, 2) for x in os.getloadavg()]  # the machine is shared: what else ran shows here
    frame = synthetic(args.tickers, args.sessions)
    ours_ta = fc.feature_query(frame).select(TA_COLUMNS).collect()
    ta_difference = largest_difference(ours_ta.fill_null(np.nan), talib_indicators(frame), ["macd", "bb_mid"])
    as_pandas = frame.to_pandas()
    ours_all = fc.compute_features(frame)
    pandas_difference = largest_difference(ours_all.fill_null(np.nan), pandas_features(as_pandas), FEATURE_COLUMNS)
    figures = {
        "ta_polars": timings(lambda: fc.feature_query(frame).select(TA_COLUMNS).collect(), args.repeats),
        "ta_talib": timings(lambda: talib_indicators(frame), args.repeats),
        "all_polars": timings(lambda: fc.compute_features(frame), args.repeats),
        "all_pandas": timings(lambda: pandas_features(as_pandas), args.repeats),
    }
    payload = {"benchmark": "features", "run_at": dt.datetime.now().isoformat(timespec="seconds"),
               "rows": frame.height, "tickers": args.tickers, "sessions": args.sessions, "repeats": args.repeats,
               "largest_relative_difference": {"talib": ta_difference, "pandas": pandas_difference},
               "seconds": figures, "polars_threads": pl.thread_pool_size(),
               "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
               "versions": {
                   "polars": pl.__version__, "pandas": pd.__version__, "talib": talib.__version__}}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=1))
    print(json.dumps(payload["seconds"]), payload["largest_relative_difference"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
