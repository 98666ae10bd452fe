"""The walk-forward's test targets are settled labels (DESIGN §3a): a labeler refit through the test span and the S
sessions after it — truth only; the training targets and the regime known at t still come from the training span.

On the bundled S&P 500 sample with the drawdown rule, whose label at the end of a fit is the rule as confirmed that
day: the peak of 2007-10-09 is a bear market in hindsight, confirmed only in July 2008.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from regime_platform.features.compute import compute_features
from regime_platform.labels import labelable, make_labeler
from regime_platform.modeling.sequences import MISSING
from regime_platform.modeling.targets import RefitLabels

H = 5


@pytest.fixture(scope="module")
def rows(sample_bars):
    bars = sample_bars.with_columns(ticker=pl.lit("SPY"))
    frame = compute_features(bars).join(bars.select("date", "adj_close"), on="date")
    return labelable(frame, make_labeler("drawdown"))


def fold_2007(rows, settle):
    dates = rows["date"].to_list()
    last_2007 = max(i for i, d in enumerate(dates) if d.year == 2007)
    return RefitLabels(rows, lambda: make_labeler("drawdown"), settle=settle).fold_labels(
        dt.date(2006, 12, 29), dates[last_2007 + H]), dates, last_2007 + H


def test_test_targets_come_from_a_fit_through_the_test_span_and_s_sessions_after(rows):
    settle = 252
    labels, dates, tte = fold_2007(rows, settle)
    assert labels.truth_fit_end == dates[tte + settle]
    through = rows.head(tte + settle + 1)
    expected = make_labeler("drawdown").fit(through).predict(through)
    assert np.array_equal(labels.test_regime[:tte + 1], expected[:tte + 1])
    after_peak = [i for i, d in enumerate(dates) if dt.date(2007, 10, 10) <= d <= dt.date(2007, 12, 31)]
    assert (labels.test_regime[after_peak] == 1).all()  # settled: a bear from the day after the peak


def test_without_settling_the_bear_of_2007_is_not_there_yet_and_the_inputs_are_the_same(rows):
    endpoint, dates, tte = fold_2007(rows, 0)
    settled, _, _ = fold_2007(rows, 252)
    after_peak = [i for i, d in enumerate(dates) if dt.date(2007, 10, 10) <= d <= dt.date(2007, 12, 31)]
    assert (endpoint.test_regime[after_peak] == 0).all() and endpoint.truth_fit_end == dates[tte]
    # truth only: training targets, the regime known at t and the recorded labeler fit range are unchanged
    assert np.array_equal(endpoint.train_regime, settled.train_regime)
    assert np.array_equal(endpoint.known_regime[:tte + 1], settled.known_regime[:tte + 1])
    assert (endpoint.fit_start, endpoint.fit_end) == (settled.fit_start, settled.fit_end) == (dates[0], dt.date(2006, 12, 29))


def test_the_last_s_sessions_of_the_data_are_left_unsettled(rows):
    dates, settle = rows["date"].to_list(), 21
    labels = RefitLabels(rows, lambda: make_labeler("drawdown"), settle=settle).fold_labels(
        dt.date(2017, 12, 29), dates[-1])
    assert (labels.test_regime[-settle:] == MISSING).all()
    assert (labels.test_regime[:-settle] >= 0).all() and labels.truth_fit_end == dates[-1]
