"""One strategy's daily path under the platform's trading convention, and its performance measures.

Convention, the same for every strategy: a signal decided after the close of session t (an exposure in
[0, 1]: 1 = long, 0 = flat) sets the position held from the close of t+1 to the close of t+2 — one full session
to act. So the return of session d (close d−1 → close d, simple return of adj_close) is earned with the signal
of session d−2. The daily return series runs from the session after the first signal date to two sessions after
the last (or the last stored price); on its first session no strategy holds a position. Turnover (the change
of position at a close, including the first entry; a switch from 1 to 0 is one unit) costs `cost_bp` basis
points of equity per unit (10 by default). The flat part of a position (1 − exposure) earns the day's cash return
(evaluation/cash.py; 0 when none is stored). Sharpe = mean / std (ddof=1) of the net daily returns in excess of
cash × √252; ann_return is geometric over 252 sessions a year; max_drawdown is the worst equity / running
peak − 1 (≤ 0); time_in_market the mean exposure; switches the total turnover in full switches,
rounded (exact for a long/flat strategy). Pure numpy, no Dagster.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from regime_platform.calendar import SESSIONS_PER_YEAR, SQRT_SESSIONS_PER_YEAR

DEFAULT_COST_BP = 10.0


@dataclass
class StrategyRun:
    """One strategy's daily path: return dates, positions, net returns and equity (equity starts at 1)."""

    strategy: str
    dates: list[dt.date]
    positions: np.ndarray
    net_returns: np.ndarray
    equity: np.ndarray
    cash: np.ndarray | None = None  # the cash return of each return date (None: 0 %)

    @property
    def excess_returns(self) -> np.ndarray:
        """Net returns minus the cash rate: what Sharpe is computed on."""
        return self.net_returns if self.cash is None else self.net_returns - self.cash

    @property
    def drawdown(self) -> np.ndarray:
        return self.equity / np.maximum.accumulate(np.concatenate([[1.0], self.equity]))[1:] - 1.0


def run_signals(strategy: str, price_dates: list[dt.date], adj_close: np.ndarray, signal_dates: list[dt.date],
                signals: np.ndarray, cost_bp: float = DEFAULT_COST_BP,
                cash: np.ndarray | None = None) -> StrategyRun:
    """Turn signals (decided after the close of each signal date) into the next-next-session positions and P&L.

    `price_dates` / `adj_close`: every stored session, sorted. A signal date missing in between keeps the
    previous position (no new information, no trade). `cash`: the cash return of each session of `price_dates`
    (earned by the flat part of the position over that session), None = 0 %.
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
    earned = np.zeros(len(ret_idx)) if cash is None else np.asarray(cash, dtype=float)[ret_idx]
    net = positions * daily + (1.0 - positions) * earned - switches * cost_bp / 10_000.0
    return StrategyRun(strategy, [price_dates[j] for j in ret_idx], positions, net, np.cumprod(1.0 + net),
                       None if cash is None else earned)


def performance(run: StrategyRun) -> dict:
    """ann_return, ann_vol, sharpe (in excess of cash), max_drawdown, switches, time_in_market of one strategy run."""
    r, excess = run.net_returns, run.excess_returns
    n = len(r)
    std = float(np.std(r, ddof=1)) if n > 1 else float("nan")
    excess_std = float(np.std(excess, ddof=1)) if n > 1 else float("nan")
    return {
        "strategy": run.strategy,
        "start_date": run.dates[0],
        "end_date": run.dates[-1],
        "ann_return": float(run.equity[-1] ** (SESSIONS_PER_YEAR / n) - 1.0),
        "ann_vol": std * SQRT_SESSIONS_PER_YEAR,
        "sharpe": float(np.mean(excess) / excess_std * SQRT_SESSIONS_PER_YEAR)
        if excess_std and np.isfinite(excess_std) and excess_std > 0 else float("nan"),
        "max_drawdown": float(run.drawdown.min()),
        "switches": int(round(float(np.abs(np.diff(np.concatenate([[0.0], run.positions]))).sum()))),
        "time_in_market": float(run.positions.mean()),
    }


__all__ = ["DEFAULT_COST_BP", "StrategyRun", "run_signals", "performance"]
