import datetime as dt

import numpy as np
import pytest

from regime_platform.modeling.folds import embargo_gap, embargo_last_train_t, validation_tail, walk_forward_folds
from regime_platform_tests.conftest import weekdays

W, H = 30, 5


def contiguous_samples(n: int, first_complete: int = 0) -> np.ndarray:
    return np.arange(first_complete + W - 1, n - H)


def test_embargo_arithmetic_last_training_t_is_T_minus_69():
    assert embargo_last_train_t(1000, W, H) == 1000 - 69
    assert embargo_gap(1000 - 69, 1000, W, H) == W + H
    assert embargo_gap(1000 - 68, 1000, W, H) == W + H - 1  # one session short

    dates = weekdays(dt.date(2000, 1, 3), 2200)
    folds = walk_forward_folds(dates, contiguous_samples(len(dates)), W, H)
    assert len(folds) >= 2
    for f in folds:
        T = f.first_test_t
        assert f.last_train_t == T - 69  # exactly: samples are contiguous
        assert T - 68 not in f.train_t
        assert f.embargo_sessions == W + H
        assert (T - W + 1) - (f.train_t.max() + H) >= W + H
        assert f.train_target_end == dates[T - 69 + H]


def test_first_test_year_rule():
    dates = weekdays(dt.date(2000, 1, 3), 2200)
    years = np.array([d.year for d in dates])
    first_2005 = int(np.searchsorted(years, 2005))
    # s0 exactly 1,260 sessions before the first session of 2005 → 2005 is the first test year
    s0 = first_2005 - 1260
    folds = walk_forward_folds(dates, contiguous_samples(len(dates), s0), W, H, first_session=s0)
    assert folds[0].test_year == 2005 and not folds[0].single_split
    assert folds[0].test_start == dates[first_2005]
    assert folds[0].first_test_t == first_2005
    # one session later and 2005 is short by one → 2006
    folds = walk_forward_folds(dates, contiguous_samples(len(dates), s0 + 1), W, H, first_session=s0 + 1)
    assert folds[0].test_year == 2006
    # default first_session = first sample − w + 1
    folds = walk_forward_folds(dates, contiguous_samples(len(dates), s0), W, H)
    assert folds[0].test_year == 2005


def test_each_fold_tests_one_calendar_year_and_expands():
    dates = weekdays(dt.date(2000, 1, 3), 2600)
    folds = walk_forward_folds(dates, contiguous_samples(len(dates)), W, H)
    for a, b in zip(folds, folds[1:]):
        assert b.fold == a.fold + 1
        assert b.test_year == a.test_year + 1
        assert a.test_end < b.test_start
        assert b.n_train > a.n_train  # expanding window
        assert a.train_start == b.train_start
    for f in folds:
        assert {dates[t].year for t in f.test_t} == {f.test_year}
    # the last fold's test targets stay inside the data
    assert folds[-1].test_t[-1] + H <= len(dates) - 1


def test_max_folds_keeps_the_last_n_with_their_numbers():
    dates = weekdays(dt.date(2000, 1, 3), 2600)
    sample_t = contiguous_samples(len(dates))
    full = walk_forward_folds(dates, sample_t, W, H)
    last2 = walk_forward_folds(dates, sample_t, W, H, max_folds=2)
    assert [f.fold for f in last2] == [f.fold for f in full[-2:]]
    assert [f.test_year for f in last2] == [f.test_year for f in full[-2:]]
    np.testing.assert_array_equal(last2[0].train_t, full[-2].train_t)


def test_single_split_fallback_when_history_is_short():
    dates = weekdays(dt.date(2010, 1, 4), 900)
    sample_t = contiguous_samples(len(dates))
    folds = walk_forward_folds(dates, sample_t, W, H)
    assert len(folds) == 1
    f = folds[0]
    assert f.single_split and f.test_year is None
    assert "single chronological split" in f.notes[0]
    k = int(0.7 * len(sample_t))
    assert f.first_test_t == sample_t[k]
    assert f.last_train_t == f.first_test_t - 69
    assert f.test_t[-1] == sample_t[-1]


def test_fewer_than_300_labelled_sessions_is_an_error():
    dates = weekdays(dt.date(2010, 1, 4), 299)
    with pytest.raises(ValueError, match="300"):
        walk_forward_folds(dates, contiguous_samples(len(dates)), W, H)
    dates = weekdays(dt.date(2010, 1, 4), 300)
    assert walk_forward_folds(dates, contiguous_samples(len(dates)), W, H)[0].single_split


def test_validation_tail_is_carved_from_the_end_with_the_embargo():
    train_t = np.arange(29, 1500)
    fit_t, val_t = validation_tail(train_t, 0.15, window=W, horizon=H)
    assert len(val_t) == int(np.ceil(0.15 * len(train_t)))
    assert val_t[-1] == train_t[-1]
    V = val_t[0]
    assert fit_t[-1] == V - 69  # same arithmetic as the folds
    assert (V - W + 1) - (fit_t[-1] + H) == W + H
    assert np.intersect1d(fit_t, val_t).size == 0
    # too small → no tail
    fit_t, val_t = validation_tail(np.arange(29, 80), 0.15, window=W, horizon=H)
    assert val_t.size == 0 and fit_t.size == 51


def test_only_yearly_refit():
    dates = weekdays(dt.date(2000, 1, 3), 2200)
    with pytest.raises(ValueError):
        walk_forward_folds(dates, contiguous_samples(len(dates)), W, H, refit="monthly")
