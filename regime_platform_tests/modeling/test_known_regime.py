"""The no_leakage recompute of known_regime (regime_platform/modeling/known_regime.py) on the bundled S&P 500 sample."""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from regime_platform.labels.labelers import labelable, make_labeler
from regime_platform.modeling.known_regime import KnownRegimeInputs, sample_dates, verify_known_regime
from regime_platform.modeling.targets import RefitLabels


@pytest.fixture(scope="module")
def fold(sample_bars):
    """One real fold: the jump labeler fit on 2004–2010, its known and hindsight labels over the test year 2011."""
    frame = sample_bars.select("date", "adj_close").filter(
        pl.col("date").is_between(dt.date(2004, 1, 2), dt.date(2012, 12, 31))).sort("date")
    dates = frame["date"].to_list()
    targets = RefitLabels(labelable(frame, make_labeler("jump")), lambda: make_labeler("jump"), name="jump")
    labels = targets.fold_labels(max(d for d in dates if d.year == 2010), None)
    test = [i for i, d in enumerate(dates) if d.year == 2011]
    record = {"fold": 0, "horizon": 5, "labeler_fit_start": labels.fit_start.isoformat(),
              "labeler_fit_end": labels.fit_end.isoformat()}
    stored = pl.DataFrame({"date": dates, "regime": labels.test_regime.tolist(), "labeler": "jump"})
    return frame, dates, test, labels, record, stored


def _oos(dates, test, known):
    return pl.DataFrame({"fold": 0, "horizon": 5, "as_of": [dates[i] for i in test],
                         "known_regime": [None if known[i] < 0 else int(known[i]) for i in test]})


def test_the_folds_online_labels_pass_and_hindsight_labels_fail(fold):
    frame, dates, test, labels, record, stored = fold
    inputs = KnownRegimeInputs(frame, stored)
    problems, checked = verify_known_regime([record], _oos(dates, test, labels.known_regime), inputs)
    assert problems == [] and checked == 6
    # the hindsight label stored as the regime known at t (the smoothed path sees the days after t)
    assert (labels.test_regime[test] != labels.known_regime[test]).mean() > 0.05
    problems, checked = verify_known_regime([record], _oos(dates, test, labels.test_regime), inputs)
    assert problems and all("run online through that date only" in p for p in problems), problems
    # a labeler fit past the dates it labels as known is refused before anything is recomputed
    late = {**record, "labeler_fit_end": "2011-06-30"}
    problems, _ = verify_known_regime([late], _oos(dates, test, labels.known_regime), inputs)
    assert problems == ["fold 0: known_regime at 2011-01-03 comes from a labeler fit through 2011-06-30, after that "
                        "date: re-materialize walk_forward_targets and the model"]


def test_a_users_file_is_checked_against_its_label_lag(fold):
    frame, dates, test, labels, record, _ = fold
    regime = labels.test_regime
    user = pl.DataFrame({"date": dates, "regime": regime.tolist(), "labeler": "user"})
    lagged = np.r_[np.full(3, -1), regime[:-3]]
    user_record = {**record, "labeler_fit_start": None, "labeler_fit_end": None}
    assert verify_known_regime([user_record], _oos(dates, test, lagged), KnownRegimeInputs(frame, user, 3)) == ([], 6)
    # known one session too early (lag 2 stored, lag 3 set): the label was not yet knowable
    early = np.r_[np.full(2, -1), regime[:-2]]
    problems, _ = verify_known_regime([user_record], _oos(dates, test, early), KnownRegimeInputs(frame, user, 3))
    assert problems and "the label 3 sessions earlier in market.regime_labels" in problems[0], problems


def test_sample_dates_take_the_changes_then_spread():
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(100)]
    known = [0] * 40 + [1] * 20 + [0] * 40
    picked = sample_dates(days, known, 4)
    assert days[40] in picked and days[60] in picked and days[99] in picked and len(picked) == 4
    assert sample_dates(days, [0] * 100, 3) == [days[0], days[50], days[99]]
    assert sample_dates([], [], 3) == []
