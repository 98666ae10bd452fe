import copy
import datetime as dt

import numpy as np
import pytest

from regime_platform.artifacts import to_jsonable
from regime_platform.leakage import verify_fold_records
from regime_platform.training import GivenLabels, TrainingConfig, walk_forward
from regime_platform_tests.conftest import weekdays

W, H = 30, 5


@pytest.fixture(scope="module")
def clean():
    n = 2400
    rng = np.random.default_rng(3)
    dates = weekdays(dt.date(2000, 1, 3), n)
    X = rng.normal(size=(n, 3))
    regime = (rng.random(n) < 0.3).astype(int)
    res = walk_forward(dates, X, ["a", "b", "c"], GivenLabels(dates, regime, regime), [],
                       TrainingConfig(window=W, horizon=H, max_folds=3))
    records = res.fold_records_json()  # as read back from folds.json (ISO date strings)
    # pretend a generated labeler fit on exactly the training span
    for rec in records:
        rec["labeler_fit_start"], rec["labeler_fit_end"] = str(dates[0]), rec["train_target_end"]
    return dates, records


def _shift(dates, iso, k):
    i = dates.index(dt.date.fromisoformat(iso))
    return dates[i + k].isoformat()


def test_clean_records_pass(clean):
    dates, records = clean
    assert verify_fold_records(records, dates, W, H, user_labels=False, allowed_features=["a", "b", "c"]) == []
    assert len(records) == 3


def _problems(dates, records, **kw):
    return verify_fold_records(records, dates, W, H, kw.pop("user_labels", False), **kw)


def test_test_overlapping_train_is_reported(clean):
    dates, records = clean
    bad = copy.deepcopy(records)
    bad[1]["train_end"] = _shift(dates, bad[1]["test_start"], 3)
    bad[1]["train_target_end"] = _shift(dates, bad[1]["train_end"], H)
    problems = _problems(dates, bad)
    assert any("overlap" in p for p in problems)
    assert any("embargo too short" in p for p in problems)


def test_embargo_one_session_short_is_reported(clean):
    dates, records = clean
    bad = copy.deepcopy(records)
    # last training t = T − 68 instead of T − 69
    bad[0]["train_end"] = _shift(dates, bad[0]["test_start"], -68)
    bad[0]["train_target_end"] = _shift(dates, bad[0]["train_end"], H)
    bad[0]["last_train_t"] += 1
    bad[0]["labeler_fit_end"] = bad[0]["train_target_end"]
    problems = _problems(dates, bad)
    assert len(problems) == 1 and "embargo too short" in problems[0] and "34 sessions" in problems[0]


def test_scaler_fit_past_train_end_is_reported(clean):
    dates, records = clean
    bad = copy.deepcopy(records)
    bad[2]["scaler_fit_end"] = _shift(dates, bad[2]["train_end"], 1)
    problems = _problems(dates, bad)
    assert len(problems) == 1 and "scaler fit to" in problems[0] and "fold" in problems[0]


def test_labeler_fit_past_train_target_end_is_reported(clean):
    dates, records = clean
    bad = copy.deepcopy(records)
    bad[0]["labeler_fit_end"] = _shift(dates, bad[0]["train_target_end"], 1)
    problems = _problems(dates, bad)
    assert len(problems) == 1 and "labeler fit to" in problems[0]
    # a user's file has no labeler fit range: the bound does not apply …
    user = copy.deepcopy(records)
    for rec in user:
        rec["labeler_fit_start"] = rec["labeler_fit_end"] = None
    assert _problems(dates, user, user_labels=True) == []
    # … but a generated labeler without a recorded range is a problem
    assert any("not recorded" in p for p in _problems(dates, user, user_labels=False))


def test_unordered_folds_are_reported(clean):
    dates, records = clean
    bad = [copy.deepcopy(records[1]), copy.deepcopy(records[0]), copy.deepcopy(records[2])]
    problems = _problems(dates, bad)
    assert any("not in increasing order" in p for p in problems)
    assert any("unordered" in p for p in problems)
    overlapping = copy.deepcopy(records)
    overlapping[1]["test_start"] = _shift(dates, overlapping[0]["test_end"], -5)
    assert any("test spans overlap" in p for p in _problems(dates, overlapping))


def test_features_and_causality_callback(clean):
    dates, records = clean
    problems = _problems(dates, records, allowed_features=["a", "b"])
    assert len(problems) == len(records) and all("c" in p and "allowed" in p for p in problems)
    problems = _problems(dates, records, feature_causality_check=lambda: ["vol_20d differs at 2005-03-01"])
    assert problems == ["vol_20d differs at 2005-03-01"]


def test_dates_not_in_session_list_and_empty_records(clean):
    dates, records = clean
    bad = copy.deepcopy(records)
    bad[0]["test_start"] = "2001-01-06"  # a Saturday
    assert any("not a session" in p for p in _problems(dates, bad))
    assert _problems(dates, []) != []
    # records with date objects (not JSON) are accepted too
    as_dates = to_jsonable(records)
    for rec in as_dates:
        for k in ("train_start", "train_end", "train_target_end", "test_start", "test_end", "scaler_fit_start",
                  "scaler_fit_end", "labeler_fit_start", "labeler_fit_end"):
            rec[k] = dt.date.fromisoformat(rec[k])
    assert _problems(dates, as_dates) == []
