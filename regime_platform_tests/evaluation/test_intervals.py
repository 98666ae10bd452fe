"""Intervals, paired differences, the selection test and the anchor strategies, on the real S&P 500 sample."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from arch.data import sp500

from regime_platform.evaluation import anchors, intervals, strategy


@pytest.fixture(scope="module")
def index():
    frame = sp500.load()
    return [d.date() for d in frame.index], frame["Adj Close"].to_numpy()


def test_resampled_measures_follow_the_backtest_conventions(index):
    dates, prices = index
    signal_dates = dates[-1500:-2]
    run = strategy.run_signals("bh", dates, prices, signal_dates, np.ones(len(signal_dates)))
    stated = strategy.performance(run)
    again = intervals.strategy_measures(run.net_returns)
    for m in intervals.STRATEGY_MEASURES:
        assert again[m][0] == pytest.approx(stated[m], rel=1e-12)


def test_paired_difference_is_tighter_than_the_two_intervals_and_zero_for_a_copy(index):
    dates, prices = index
    signal_dates = dates[-2500:-2]
    bh = strategy.run_signals("bh", dates, prices, signal_dates, np.ones(len(signal_dates)))
    sma = strategy.run_signals("vol", dates, prices, signal_dates,
                               anchors.vol_target_signals(dates, prices, signal_dates))
    idx = intervals.resampled_indices(len(bh.net_returns), resamples=300)
    bounds, draws = intervals.strategy_intervals({"bh": bh.net_returns, "vol": sma.net_returns}, idx)
    for name in ("bh", "vol"):
        low, high = bounds[name]["sharpe"]
        assert low < strategy.performance(bh if name == "bh" else sma)["sharpe"] < high
    d = intervals.paired_difference(0.0, 0.0, draws["vol"]["sharpe"], draws["bh"]["sharpe"])
    separate = (bounds["vol"]["sharpe"][1] - bounds["vol"]["sharpe"][0]) + (bounds["bh"]["sharpe"][1]
                                                                          - bounds["bh"]["sharpe"][0])
    assert d.ci_high - d.ci_low < separate / 2
    same = intervals.paired_difference(0.0, 0.0, draws["bh"]["sharpe"], draws["bh"]["sharpe"])
    assert (same.ci_low, same.ci_high, same.share_below_zero) == (0.0, 0.0, 0.0)


def test_selection_test_does_not_crown_noise(index):
    """Ten coin-flip strategies against buy-and-hold: the best of them looks good by luck; SPA does not call it."""
    dates, prices = index
    signal_dates = dates[-2500:-2]
    rng = np.random.default_rng(0)
    bh = strategy.run_signals("bh", dates, prices, signal_dates, np.ones(len(signal_dates)))
    runs = {"buy_and_hold": bh.net_returns}
    for i in range(10):
        flips = np.repeat(rng.random(len(signal_dates) // 50 + 1) < 0.8, 50)[: len(signal_dates)].astype(float)
        runs[f"coin{i}"] = strategy.run_signals(f"coin{i}", dates, prices, signal_dates, flips).net_returns
    test = intervals.superior_predictive_ability("buy_and_hold", runs, [f"coin{i}" for i in range(10)],
                                                 resamples=300)
    assert test.candidates == 10 and test.pvalue > 0.10
    assert "no model of the 10 can be told from buy_and_hold" in test.sentence()


def test_vol_target_is_the_trailing_20_session_volatility_rule(index):
    dates, prices = index
    exposure = anchors.vol_target_signals(dates, prices, dates)
    assert exposure[:20].tolist() == [0.0] * 20 and ((exposure >= 0) & (exposure <= 1)).all()
    t = 3000
    r = np.diff(np.log(prices[t - 20: t + 1]))
    assert exposure[t] == pytest.approx(min(1.0, 0.10 / (r.std(ddof=1) * np.sqrt(252))))


def test_jump_signal_is_decided_inside_the_training_span(index):
    """Prices after the training span change neither the chosen penalty, nor the bear state, nor any signal up to
    the day before the change: nothing of the test year reaches the fit."""
    dates, prices = index
    train = (dates[0], dt.date(2007, 12, 31))
    test_dates = [d for d in dates if dt.date(2008, 1, 2) <= d <= dt.date(2008, 12, 31)]
    fold_of = dict.fromkeys(test_dates, 0)
    signals, (fit,) = anchors.jump_signals(dates, prices, test_dates, fold_of, {0: train})
    assert fit.penalty in anchors.JUMP_PENALTIES and len(fit.validation_sharpe) == len(anchors.JUMP_PENALTIES)
    assert set(np.unique(signals)) <= {0.0, 1.0} and 0 < signals.mean() < 1  # flat for part of 2008
    changed = prices.copy()
    cut = dates.index(dt.date(2008, 7, 1))
    changed[cut:] *= np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.03, len(prices) - cut)))
    again, (refit,) = anchors.jump_signals(dates, changed, test_dates, fold_of, {0: train})
    assert (refit.penalty, refit.bear_state, refit.validation_sharpe) == (fit.penalty, fit.bear_state,
                                                                         fit.validation_sharpe)
    before = [n for n, d in enumerate(test_dates) if d < dt.date(2008, 7, 1)]
    assert (again[before] == signals[before]).all()


def test_a_span_too_short_for_the_jump_signal_says_so(index):
    dates, prices = index
    with pytest.raises(anchors.TooShort, match="fewer than the 504 the jump signal needs"):
        anchors.fit_jump_signal(3, dates, prices, dates[0], dates[300])
