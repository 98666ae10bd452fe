"""The cash rate: a flat position earns it, Sharpe is in excess of it, and it is read point in time from market.macro."""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from regime_platform import calendar
from regime_platform.calendar import SQRT_SESSIONS_PER_YEAR
from regime_platform.evaluation import backtest, cash, intervals
from regime_platform.evaluation.strategy import performance, run_signals
from regime_platform.ingestion import macro as rules
from regime_platform.ingestion import macro_sources as sources

D = dt.date


def stored_rf(start: dt.date, end: dt.date) -> pl.DataFrame:
    """The bundled Fama–French monthly RF as the macro asset stores it (usable_from by the rule)."""
    answer = sources.fetch_series([], start, end, "sample")["FF_RF"]
    return rules.build_rows(answer, 1, dt.datetime(2019, 1, 1)).rows


def test_a_flat_position_earns_the_cash_rate_and_a_half_position_half_of_it():
    dates = calendar.sessions(D(2018, 1, 2), D(2018, 3, 29))
    prices = np.linspace(100.0, 90.0, len(dates))  # a falling market
    daily_cash = np.full(len(dates), 0.0001)
    flat = run_signals("flat", dates, prices, dates[:-2], np.zeros(len(dates) - 2), cost_bp=0.0, cash=daily_cash)
    assert np.allclose(flat.net_returns, 0.0001) and np.allclose(flat.excess_returns, 0.0)
    half = run_signals("half", dates, prices, dates[:-2], np.full(len(dates) - 2, 0.5), cost_bp=0.0, cash=daily_cash)
    market = prices[1:] / prices[:-1] - 1.0
    held = half.positions > 0
    assert np.allclose(half.net_returns[held], 0.5 * market[held] + 0.5 * 0.0001)
    # without a cash rate the same flat position earns exactly 0
    assert np.allclose(run_signals("flat", dates, prices, dates[:-2], np.zeros(len(dates) - 2), 0.0).net_returns, 0.0)


def test_sharpe_is_on_returns_in_excess_of_cash_in_the_table_and_its_interval():
    rng = np.random.default_rng(3)
    dates = calendar.sessions(D(2016, 1, 4), D(2018, 12, 31))
    prices = 100.0 * np.cumprod(1.0 + rng.normal(0.0004, 0.01, len(dates)))
    daily_cash = np.full(len(dates), 0.0002)  # about 5 % a year
    run = run_signals("buy_and_hold", dates, prices, dates[:-2], np.ones(len(dates) - 2), cash=daily_cash)
    excess = run.net_returns - run.cash
    expected = excess.mean() / excess.std(ddof=1) * SQRT_SESSIONS_PER_YEAR
    assert performance(run)["sharpe"] == pytest.approx(expected, rel=1e-12)
    plain = run_signals("buy_and_hold", dates, prices, dates[:-2], np.ones(len(dates) - 2))
    assert performance(run)["sharpe"] < performance(plain)["sharpe"] - 0.3  # 5 % a year of cash is a real hurdle
    measured = intervals.strategy_measures(run.net_returns, run.cash)
    assert measured["sharpe"][0] == pytest.approx(expected, rel=1e-12)


def test_cash_is_read_point_in_time_and_a_later_value_changes_nothing():
    prices = calendar.sessions(D(2017, 1, 3), D(2018, 12, 31))
    rows = stored_rf(D(2016, 10, 1), D(2018, 12, 31))
    rate = cash.cash_returns(rows, prices)
    assert rate.series == "FF_RF" and rate.fresh[1:].all() and rate.daily[0] == 0.0
    # session 2018-08-01 earns the value usable at the close of 07-31: June's RF is usable only from 08-01 (July 2 +
    # 21 sessions), so May's (usable 07-03) is the one
    i = prices.index(D(2018, 8, 1))
    may = rows.filter(pl.col("date") == D(2018, 5, 1))["value"][0]
    assert rate.daily[i] == pytest.approx((1 + may / 100) ** (12 / 252) - 1, rel=1e-12)
    # changing June's value (not yet usable at the close of 07-31) changes nothing up to 08-01
    changed = rows.with_columns(pl.when(pl.col("date") == D(2018, 6, 1)).then(9.9).otherwise(pl.col("value"))
                                .alias("value"))
    again = cash.cash_returns(changed, prices)
    assert np.array_equal(again.daily[: i + 1], rate.daily[: i + 1]) and again.daily[i + 1] != rate.daily[i + 1]
    assert "FF_RF" in rate.sentence(prices[1], prices[-1]) and "excess" in rate.sentence(prices[1], prices[-1])


def test_no_stored_cash_rate_earns_zero_and_the_backtest_page_says_so():
    dates = calendar.sessions(D(2018, 1, 2), D(2018, 6, 29))
    none = cash.cash_returns(pl.DataFrame(schema=rules.ROW_SCHEMA), dates)
    assert none.series is None and not none.daily.any()
    assert "earns 0 %" in none.sentence(dates[0], dates[-1])
    prices = pl.DataFrame({"date": dates, "adj_close": np.linspace(100, 110, len(dates))})
    oos = pl.DataFrame({"model": "m", "fold": 0, "as_of": dates[10:-2], "horizon": 5,
                        "predicted_regime": [i % 2 for i in range(len(dates) - 12)]})
    bt = backtest.backtest_horizon(oos, prices, 1, 5, cash=none)
    assert "earns 0 %" in bt.cash_sentence
    with_rf = cash.cash_returns(stored_rf(D(2017, 10, 1), D(2018, 6, 29)), dates)
    earning = backtest.backtest_horizon(oos, prices, 1, 5, cash=with_rf)
    assert "FF_RF" in earning.cash_sentence
    m, m0 = earning.runs["m"], bt.runs["m"]
    flat = m.positions == 0
    assert np.allclose(m.net_returns[flat] - m0.net_returns[flat], m.cash[flat]) and m.cash[flat].max() > 0
