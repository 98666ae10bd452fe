"""An economic backtest of the regime forecasts against buy-and-hold and the 200-day rule.

Convention, the same for every strategy: a signal decided after the close of session t (1 = long, 0 = flat)
sets the position held from the close of t+1 to the close of t+2 — one full session to act. So the return of
session d (close d−1 → close d, simple return of adj_close) is earned with the signal of session d−2.
The daily return series runs from the session after the first forecast date to two sessions after the last
(or the last stored price); on its first session no strategy holds a position. A switch (the position
changes at a close, including the first entry) costs `cost_bp` basis points of equity (10 by default).
Sharpe = mean / std (ddof=1) of the net daily returns × √252, no risk-free rate; ann_return is geometric
over 252 sessions a year; max_drawdown is the worst equity / running peak − 1 (≤ 0); time_in_market the
share of return sessions held long.

Strategies: a model is flat when its forecast is its fold's risk-off regime (the regime with the lowest mean
daily return in that fold's training span) and long otherwise; `buy_and_hold` is always long; `sma_200` is
long when the close of t is above the mean of the 200 closes ending at t (flat until 200 closes exist).
Pure numpy/polars, no Dagster.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from regime_platform.calendar import SESSIONS_PER_YEAR, SQRT_SESSIONS_PER_YEAR

DEFAULT_COST_BP = 10.0
SMA_WINDOW = 200
BUY_AND_HOLD = "buy_and_hold"
SMA_200 = "sma_200"
RULES = (BUY_AND_HOLD, SMA_200)
BACKTEST_SCHEMA = {"strategy": pl.Utf8, "horizon": pl.Int32, "start_date": pl.Date, "end_date": pl.Date,
                   "ann_return": pl.Float64, "ann_vol": pl.Float64, "sharpe": pl.Float64,
                   "max_drawdown": pl.Float64, "switches": pl.Int32, "time_in_market": pl.Float64}


@dataclass
class StrategyRun:
    """One strategy's daily path: return dates, positions, net returns and equity (equity starts at 1)."""

    strategy: str
    dates: list[dt.date]
    positions: np.ndarray
    net_returns: np.ndarray
    equity: np.ndarray

    @property
    def drawdown(self) -> np.ndarray:
        return self.equity / np.maximum.accumulate(np.concatenate([[1.0], self.equity]))[1:] - 1.0


def risk_off_regime_of(returns_by_regime: Mapping[int, float]) -> int:
    """The regime with the lowest mean daily return (ties: the lower id)."""
    if not returns_by_regime:
        raise ValueError("no regime has a mean return in the training span; cannot name a risk-off regime.")
    return min(sorted(returns_by_regime), key=lambda r: returns_by_regime[r])


def run_signals(strategy: str, price_dates: list[dt.date], adj_close: np.ndarray, signal_dates: list[dt.date],
                signals: np.ndarray, cost_bp: float = DEFAULT_COST_BP) -> StrategyRun:
    """Turn signals (decided after the close of each signal date) into the next-next-session positions and P&L.

    `price_dates` / `adj_close`: every stored session, sorted. A signal date missing in between keeps the
    previous position (no new information, no trade).
    """
    index = {d: i for i, d in enumerate(price_dates)}
    missing = [d for d in signal_dates if d not in index]
    if missing:
        raise ValueError(f"forecast date {missing[0]} has no price in market.ohlcv: materialize ohlcv over the "
                         "out-of-sample span first.")
    at = np.array([index[d] for d in signal_dates])
    first, last = int(at.min()), int(at.max())
    stop = min(last + 2, len(price_dates) - 1)
    if stop <= first:
        raise ValueError(f"{strategy}: no price after the first forecast date {signal_dates[0]}; nothing to backtest.")
    ret_idx = np.arange(first + 1, stop + 1)
    decided = np.full(len(price_dates), np.nan)
    decided[at] = np.asarray(signals, dtype=float)
    positions = np.zeros(len(ret_idx))
    held = 0.0
    for n, j in enumerate(ret_idx):
        if j - 2 >= first and np.isfinite(decided[j - 2]):
            held = decided[j - 2]
        positions[n] = held if j - 2 >= first else 0.0
    prices = np.asarray(adj_close, dtype=float)
    daily = prices[ret_idx] / prices[ret_idx - 1] - 1.0
    switches = np.abs(np.diff(np.concatenate([[0.0], positions])))
    net = positions * daily - switches * cost_bp / 10_000.0
    return StrategyRun(strategy, [price_dates[j] for j in ret_idx], positions, net, np.cumprod(1.0 + net))


def performance(run: StrategyRun) -> dict:
    """ann_return, ann_vol, sharpe, max_drawdown, switches, time_in_market of one strategy run."""
    r = run.net_returns
    n = len(r)
    std = float(np.std(r, ddof=1)) if n > 1 else float("nan")
    return {
        "strategy": run.strategy,
        "start_date": run.dates[0],
        "end_date": run.dates[-1],
        "ann_return": float(run.equity[-1] ** (SESSIONS_PER_YEAR / n) - 1.0),
        "ann_vol": std * SQRT_SESSIONS_PER_YEAR,
        "sharpe": float(np.mean(r) / std * SQRT_SESSIONS_PER_YEAR) if std and np.isfinite(std) and std > 0 else float("nan"),
        "max_drawdown": float(run.drawdown.min()),
        "switches": int(np.abs(np.diff(np.concatenate([[0.0], run.positions]))).sum()),
        "time_in_market": float(run.positions.mean()),
    }


def sma_signals(price_dates: list[dt.date], adj_close: np.ndarray, signal_dates: list[dt.date],
                window: int = SMA_WINDOW) -> np.ndarray:
    """1 when the close of t is above the mean of the `window` closes ending at t, else 0 (0 while warming up)."""
    prices = pl.Series(np.asarray(adj_close, dtype=float))
    sma = prices.rolling_mean(window).to_numpy()
    above = np.where(np.isfinite(sma), (prices.to_numpy() > sma).astype(float), 0.0)
    index = {d: i for i, d in enumerate(price_dates)}
    return np.array([above[index[d]] for d in signal_dates])


def model_signals(forecasts: pl.DataFrame, risk_off: Mapping[int, int] | int) -> np.ndarray:
    """0 where the forecast is the row's fold's risk-off regime, else 1.

    `risk_off` is a mapping fold → regime, or one regime id for every fold (a user's labels, run config).
    """
    predicted = forecasts["predicted_regime"].to_numpy()
    if isinstance(risk_off, Mapping):
        folds = forecasts["fold"].to_list()
        unknown = sorted({f for f in folds if f not in risk_off}, key=str)
        if unknown:
            raise ValueError(f"fold {unknown[0]} has no risk-off regime in market.walk_forward_folds: re-materialize "
                             "the model assets (they record it per fold), or set risk_off_regime in the backtest's "
                             "run config.")
        flat = np.array([risk_off[f] for f in folds])
    else:
        flat = np.full(len(predicted), int(risk_off))
    return (predicted != flat).astype(float)


def backtest_horizon(forecasts: pl.DataFrame, prices: pl.DataFrame, risk_off: Mapping[int, int] | int,
                     horizon: int, cost_bp: float = DEFAULT_COST_BP) -> tuple[pl.DataFrame, dict[str, StrategyRun]]:
    """Every model of one horizon plus buy_and_hold and sma_200, on the same dates.

    `forecasts`: model, fold, as_of, predicted_regime (one horizon). `prices`: date, adj_close (every session).
    The dates are the forecast dates common to every model. Returns the `market.backtest` rows and the runs.
    """
    prices = prices.sort("date")
    price_dates = prices["date"].to_list()
    adj_close = prices["adj_close"].to_numpy()
    models = sorted(forecasts["model"].unique().to_list())
    per_model = {m: forecasts.filter(pl.col("model") == m).unique("as_of", keep="last").sort("as_of") for m in models}
    common = set.intersection(*(set(f["as_of"].to_list()) for f in per_model.values()))
    if not common:
        raise ValueError(f"the models of horizon {horizon} share no forecast date in market.oos_predictions: "
                         "re-materialize the model assets with the same settings.")
    dates = sorted(common)
    runs: dict[str, StrategyRun] = {}
    for m, f in per_model.items():
        f = f.filter(pl.col("as_of").is_in(dates))
        runs[m] = run_signals(m, price_dates, adj_close, dates, model_signals(f, risk_off), cost_bp)
    runs[BUY_AND_HOLD] = run_signals(BUY_AND_HOLD, price_dates, adj_close, dates, np.ones(len(dates)), cost_bp)
    runs[SMA_200] = run_signals(SMA_200, price_dates, adj_close, dates,
                                sma_signals(price_dates, adj_close, dates), cost_bp)
    rows = [performance(run) | {"horizon": horizon} for run in runs.values()]
    table = (pl.DataFrame(rows, schema=BACKTEST_SCHEMA).select(list(BACKTEST_SCHEMA))
             .with_columns(pl.col("sharpe").fill_nan(None))  # a strategy that never moves has no Sharpe ratio
             .sort("sharpe", descending=True, nulls_last=True))
    return table, runs


def backtest_all(oos: pl.DataFrame, prices: pl.DataFrame, risk_off_by_horizon: Mapping[int, Mapping[int, int] | int],
                 cost_bp: float = DEFAULT_COST_BP) -> tuple[pl.DataFrame, dict[int, dict[str, StrategyRun]]]:
    """backtest_horizon for every horizon in `oos`; `risk_off_by_horizon[h]` is a fold mapping or one id."""
    tables, runs = [], {}
    for h in sorted(oos["horizon"].unique().to_list()):
        if h not in risk_off_by_horizon:
            raise ValueError(f"no risk-off regime for horizon {h}: market.walk_forward_folds has no fold of that "
                             "horizon; re-materialize the model assets or set risk_off_regime in run config.")
        table, runs[h] = backtest_horizon(oos.filter(pl.col("horizon") == h), prices, risk_off_by_horizon[h], int(h),
                                          cost_bp)
        tables.append(table)
    return pl.concat(tables), runs
