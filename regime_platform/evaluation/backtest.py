"""An economic backtest of the regime forecasts against buy-and-hold and the rules research already offers.

The trading convention (a signal after the close of t sets the position from the close of t+1 to t+2, 10 bp per
unit of turnover, the flat part earning the stored cash rate, Sharpe in excess of it) is written once, in
:mod:`regime_platform.evaluation.strategy`; the cash rate in :mod:`regime_platform.evaluation.cash`.

Strategies: a model is flat when its forecast is its fold's risk-off regime (the regime with the lowest mean
daily return in that fold's training span) and long otherwise; `buy_and_hold` is always long; `sma_200` is
long when the close of t is above the mean of the 200 closes ending at t (flat until 200 closes exist);
`vol_target` and `jump_signal` are the anchors of :mod:`regime_platform.evaluation.anchors`. Every strategy is
run on the same dates — the forecast dates common to every model. Pure numpy/polars, no Dagster.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from regime_platform.evaluation import anchors, intervals
from regime_platform.evaluation.cash import CashRate
from regime_platform.evaluation.strategy import DEFAULT_COST_BP, StrategyRun, performance, run_signals

SMA_WINDOW = 200
BUY_AND_HOLD = "buy_and_hold"
SMA_200 = "sma_200"
RULES = (BUY_AND_HOLD, SMA_200, *anchors.ANCHORS)  # strategies that trade without forecasting a regime
BACKTEST_SCHEMA = {"strategy": pl.Utf8, "horizon": pl.Int32, "start_date": pl.Date, "end_date": pl.Date,
                   "ann_return": pl.Float64, "ann_vol": pl.Float64, "sharpe": pl.Float64,
                   "max_drawdown": pl.Float64, "switches": pl.Int32, "time_in_market": pl.Float64,
                   **{f"{m}_{end}": pl.Float64 for m in intervals.STRATEGY_MEASURES for end in ("lo", "hi")}}


def risk_off_regime_of(returns_by_regime: Mapping[int, float]) -> int:
    """The regime with the lowest mean daily return (ties: the lower id)."""
    if not returns_by_regime:
        raise ValueError("no regime has a mean return in the training span; cannot name a risk-off regime.")
    return min(sorted(returns_by_regime), key=lambda r: returns_by_regime[r])


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


@dataclass
class HorizonBacktest:
    """One horizon's backtest: the `market.backtest` rows (with intervals), every strategy's run on the same dates,
    the anchors' signals and fits, and the bootstrap draws shared by every strategy (for paired differences)."""

    horizon: int
    table: pl.DataFrame
    runs: dict[str, StrategyRun]
    signal_dates: list[dt.date]
    signals: dict[str, np.ndarray]
    jump_fits: list[anchors.JumpFit] = field(default_factory=list)
    resampled: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cash_sentence: str = "a flat position earns 0 %: no cash rate was given."


def backtest_horizon(forecasts: pl.DataFrame, prices: pl.DataFrame, risk_off: Mapping[int, int] | int,
                     horizon: int, cost_bp: float = DEFAULT_COST_BP,
                     spans: Mapping[int, tuple[dt.date, dt.date]] | None = None,
                     seed: int = intervals.SEED, cash: CashRate | None = None) -> HorizonBacktest:
    """Every model of one horizon plus buy_and_hold, sma_200, vol_target and (given the folds' training `spans`)
    jump_signal, on the same dates, each measure with its 90 % interval; the flat part of every position earns
    `cash` (its sessions = the price dates; None: 0 %) and Sharpe is in excess of it.

    `forecasts`: model, fold, as_of, predicted_regime (one horizon). `prices`: date, adj_close (every session).
    The dates are the forecast dates common to every model.
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
    signals: dict[str, np.ndarray] = {}
    for m, f in per_model.items():
        signals[m] = model_signals(f.filter(pl.col("as_of").is_in(dates)), risk_off)
    signals[BUY_AND_HOLD] = np.ones(len(dates))
    signals[SMA_200] = sma_signals(price_dates, adj_close, dates)
    signals[anchors.VOL_TARGET] = anchors.vol_target_signals(price_dates, adj_close, dates)
    fits: list[anchors.JumpFit] = []
    notes: list[str] = []
    if spans is not None:
        first = per_model[models[0]].filter(pl.col("as_of").is_in(dates))
        fold_of = dict(zip(first["as_of"].to_list(), first["fold"].to_list()))
        try:
            signals[anchors.JUMP_SIGNAL], fits = anchors.jump_signals(price_dates, adj_close, dates, fold_of, spans,
                                                                      cost_bp)
        except anchors.TooShort as short:  # a finding, said on the page: the other strategies still stand
            notes.append(f"jump_signal is left out at h = {horizon}: {short}")
    else:
        notes.append(f"jump_signal is left out at h = {horizon}: no fold training spans were given.")
    if cash is not None and cash.dates != price_dates:
        raise ValueError("the cash rate was computed for other sessions than market.ohlcv holds; recompute it from "
                         "the same prices.")
    daily_cash = None if cash is None else cash.daily
    runs = {name: run_signals(name, price_dates, adj_close, dates, s, cost_bp, daily_cash)
            for name, s in signals.items()}
    first_run = next(iter(runs.values()))
    indices = intervals.cached_indices(len(first_run.net_returns), seed)
    bounds, resampled = intervals.strategy_intervals({n: r.net_returns for n, r in runs.items()}, indices,
                                                     cash=first_run.cash)
    rows = []
    for name, run in runs.items():
        row = performance(run) | {"horizon": horizon}
        for measure, (low, high) in bounds[name].items():
            row |= {f"{measure}_lo": low, f"{measure}_hi": high}
        rows.append(row)
    table = (pl.DataFrame(rows, schema=BACKTEST_SCHEMA).select(list(BACKTEST_SCHEMA))
             .with_columns([pl.col(c).fill_nan(None) for c in BACKTEST_SCHEMA if BACKTEST_SCHEMA[c] == pl.Float64])
             .sort("sharpe", descending=True, nulls_last=True))  # a strategy that never moves has no Sharpe ratio
    said = cash.sentence(first_run.dates[0], first_run.dates[-1]) if cash is not None else \
        HorizonBacktest.cash_sentence
    return HorizonBacktest(horizon, table, runs, dates, signals, fits, resampled, notes, said)


def backtest_all(oos: pl.DataFrame, prices: pl.DataFrame, risk_off_by_horizon: Mapping[int, Mapping[int, int] | int],
                 cost_bp: float = DEFAULT_COST_BP,
                 spans_by_horizon: Mapping[int, Mapping[int, tuple[dt.date, dt.date]]] | None = None,
                 seed: int = intervals.SEED, cash: CashRate | None = None) -> dict[int, HorizonBacktest]:
    """backtest_horizon for every horizon in `oos`; `risk_off_by_horizon[h]` is a fold mapping or one id."""
    out = {}
    for h in sorted(oos["horizon"].unique().to_list()):
        if h not in risk_off_by_horizon:
            raise ValueError(f"no risk-off regime for horizon {h}: market.walk_forward_folds has no fold of that "
                             "horizon; re-materialize the model assets or set risk_off_regime in run config.")
        spans = None if spans_by_horizon is None else spans_by_horizon.get(h)
        out[int(h)] = backtest_horizon(oos.filter(pl.col("horizon") == h), prices, risk_off_by_horizon[h], int(h),
                                       cost_bp, spans, seed, cash)
    return out


def backtest_table(backtests: Mapping[int, HorizonBacktest]) -> pl.DataFrame:
    """The `market.backtest` rows of every horizon."""
    return pl.concat([b.table for b in backtests.values()])
