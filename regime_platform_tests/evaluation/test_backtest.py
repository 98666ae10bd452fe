"""The backtest on a hand-built price path: next-session execution, switch costs, no position on the first day."""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from regime_platform.evaluation import backtest
from regime_platform_tests.conftest import weekdays


def test_signal_after_close_t_earns_close_t1_to_close_t2_with_switch_costs():
    dates = weekdays(dt.date(2021, 1, 4), 7)
    prices = np.array([100.0, 110.0, 99.0, 108.9, 108.9, 119.79, 119.79])
    # signals decided after the close of dates[0..4]
    signals = np.array([1.0, 1.0, 0.0, 1.0, 1.0])
    run = backtest.run_signals("m", dates, prices, dates[:5], signals, cost_bp=10)
    # return sessions: dates[1] .. dates[6] (two after the last signal date)
    assert run.dates == dates[1:7]
    # day 1: no position (first day); day 2 uses the signal of day 0; day 3 of day 1; day 4 of day 2 ...
    assert run.positions.tolist() == [0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    daily = prices[1:] / prices[:-1] - 1  # 0.10, -0.10, 0.10, 0, 0.10, 0
    cost = 0.001
    expected = [0.0, daily[1] - cost, daily[2], -cost, daily[4] - cost, daily[5]]
    np.testing.assert_allclose(run.net_returns, expected)
    stats = backtest.performance(run)
    assert stats["switches"] == 3 and stats["time_in_market"] == pytest.approx(4 / 6)
    assert stats["sharpe"] == pytest.approx(np.mean(expected) / np.std(expected, ddof=1) * np.sqrt(252))
    equity = np.cumprod(1 + np.array(expected))
    assert stats["max_drawdown"] == pytest.approx(min(0.0, (equity / np.maximum.accumulate(np.r_[1, equity])[1:] - 1).min()))
    assert stats["ann_return"] == pytest.approx(equity[-1] ** (252 / 6) - 1)
    assert (stats["start_date"], stats["end_date"]) == (dates[1], dates[6])


def test_a_zero_cost_buy_and_hold_earns_the_price_from_the_second_close():
    dates = weekdays(dt.date(2021, 1, 4), 5)
    prices = np.array([100.0, 120.0, 90.0, 99.0, 110.0])
    run = backtest.run_signals("bh", dates, prices, dates[:3], np.ones(3), cost_bp=0)
    # the move of the first session (100 → 120) is not earned: no position on the first day
    assert run.equity[-1] == pytest.approx(110.0 / 120.0)
    assert backtest.performance(run)["max_drawdown"] == pytest.approx(90 / 120 - 1)


def test_model_strategy_is_flat_in_its_folds_risk_off_regime_and_rules_share_the_dates():
    dates = weekdays(dt.date(2020, 1, 1), 260)
    prices = pl.DataFrame({"date": dates, "adj_close": np.linspace(100, 130, 260)})
    as_of = dates[-10:]
    forecasts = pl.DataFrame({"model": ["m"] * 10, "fold": [0] * 5 + [1] * 5, "as_of": as_of,
                              "predicted_regime": [1] * 10})
    # fold 0 calls regime 1 risk-off, fold 1 calls regime 0 risk-off: flat for the first five signals only
    signals = backtest.model_signals(forecasts, {0: 1, 1: 0})
    assert signals.tolist() == [0.0] * 5 + [1.0] * 5
    result = backtest.backtest_horizon(forecasts, prices, {0: 1, 1: 0}, horizon=5)
    table, runs = result.table, result.runs
    assert set(table["strategy"]) == {"m", "buy_and_hold", "sma_200", "vol_target"}  # no fold spans: no jump_signal
    assert "jump_signal is left out" in result.notes[0]
    assert runs["m"].dates == runs["buy_and_hold"].dates == runs["sma_200"].dates == runs["vol_target"].dates
    assert table.filter(pl.col("strategy") == "sma_200")["time_in_market"].item() == pytest.approx(
        runs["buy_and_hold"].positions.mean())  # a rising price is always above its 200-session mean
    with pytest.raises(ValueError, match="risk_off_regime"):
        backtest.model_signals(forecasts, {0: 1})


def test_sma_signal_needs_200_closes_and_compares_the_close_of_t():
    dates = weekdays(dt.date(2020, 1, 1), 202)
    prices = np.r_[np.full(200, 100.0), 101.0, 99.0]
    s = backtest.sma_signals(dates, prices, dates[198:], window=200)
    assert s.tolist() == [0.0, 0.0, 1.0, 0.0]


def test_risk_off_is_the_lowest_mean_return():
    assert backtest.risk_off_regime_of({0: 0.001, 1: -0.002, 2: 0.0}) == 1
