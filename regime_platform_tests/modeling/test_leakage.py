import copy
import datetime as dt

import numpy as np
import polars as pl
import pytest

from regime_platform.modeling.leakage import verify_fold_records
from regime_platform.modeling.targets import RefitLabels
from regime_platform.modeling.training import TrainingConfig
from regime_platform.modeling.walk_forward import walk_forward
from regime_platform.storage.files import to_jsonable
from regime_platform_tests.conftest import weekdays

W, H = 30, 5


class QuantileLabeler:
    """A real (if simple) generated labeler: regime 1 where feature `a` is above its fit span's 70th percentile."""

    n_regimes, name = 2, "quantile"

    def fit(self, frame):
        self.cut = float(np.quantile(frame["a"].to_numpy(), 0.7))
        return self

    def predict(self, frame):
        return (frame["a"].to_numpy() > self.cut).astype(float)

    predict_online = predict


@pytest.fixture(scope="module")
def clean():
    """Records of a real walk-forward with a labeler refit per fold: the labeler bound is exercised as produced."""
    n = 2400
    rng = np.random.default_rng(3)
    dates = weekdays(dt.date(2000, 1, 3), n)
    X = rng.normal(size=(n, 3))
    targets = RefitLabels(pl.DataFrame({"date": dates, "a": X[:, 0]}), QuantileLabeler)
    res = walk_forward(dates, X, ["a", "b", "c"], targets, [], TrainingConfig(window=W, horizon=H, max_folds=3))
    records = res.fold_records_json()  # as read back from market.fold_records (ISO date strings)
    for rec in records:
        assert rec["labeler_fit_end"] == rec["train_target_end"] and not rec["user_labels"]
    return dates, records


def _shift(dates, iso, k):
    i = dates.index(dt.date.fromisoformat(iso))
    return dates[i + k].isoformat()


def test_clean_records_pass(clean):
    dates, records = clean
    assert verify_fold_records(records, dates, stored_labeler="quantile", allowed_features=["a", "b", "c"]) == []
    assert len(records) == 3


def _problems(dates, records, **kw):
    if "user_labels" in kw:  # what a record says about the labels it was trained on
        for rec in records:
            rec["user_labels"] = kw["user_labels"]
        kw.pop("user_labels")
    return verify_fold_records(records, dates, **kw)


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


def test_a_validation_tail_not_embargoed_from_the_part_fit_before_it_is_reported(clean):
    dates, records = clean
    assert all(rec["validation_start"] and rec["epoch_selection_fit_end"] for rec in records)
    bad = copy.deepcopy(records)
    # the last sample fit before the tail at V − 68 instead of V − 69: one session short of the folds' embargo
    bad[1]["epoch_selection_fit_end"] = _shift(dates, bad[1]["validation_start"], -68)
    problems = _problems(dates, bad)
    assert len(problems) == 1 and f"fold {bad[1]['fold']}:" in problems[0] and "validation tail embargo too short — 34 sessions" \
        in problems[0], problems
    # a probe that counted another number of samples than the part before the tail holds was fit on other rows
    miscounted = copy.deepcopy(records)
    miscounted[0]["models"]["majority"]["n_epoch_selection_fit"] = records[0]["n_epoch_selection_fit"] + 1
    problems = _problems(dates, miscounted)
    assert len(problems) == 1 and "majority's epoch selection fit counted" in problems[0], problems


def test_calibration_and_feature_selection_outside_the_validation_tail_are_reported():
    """Real records of a calibrated logistic with per-fold feature selection: each records the samples it read, inside
    the tail; moved outside it (or not recorded) they are reported."""
    n = 2400
    rng = np.random.default_rng(4)
    dates = weekdays(dt.date(2000, 1, 3), n)
    X = rng.normal(size=(n, 3))
    targets = RefitLabels(pl.DataFrame({"date": dates, "a": X[:, 0]}), QuantileLabeler)
    config = TrainingConfig(window=W, horizon=H, max_folds=2, feature_selection=True, calibration="temperature")
    records = walk_forward(dates, X, ["a", "b", "c"], targets, ["logistic"], config).fold_records_json()
    assert verify_fold_records(records, dates) == []
    for rec in records:
        for read in (rec["feature_selection"], rec["models"]["logistic"]["calibration"]):
            assert (read["rows_start"], read["rows_end"], read["n_rows"]) == (
                rec["validation_start"], rec["validation_end"], rec["n_validation"])
    early = copy.deepcopy(records)  # feature selection that read the whole training span, as it used to
    early[0]["feature_selection"]["rows_start"] = early[0]["train_start"]
    problems = verify_fold_records(early, dates)
    assert len(problems) == 1 and "feature selection read samples" in problems[0] and "outside the validation tail" \
        in problems[0], problems
    late = copy.deepcopy(records)  # a temperature fit on samples past the tail: the test span
    late[1]["models"]["logistic"]["calibration"]["rows_end"] = late[1]["test_start"]
    problems = verify_fold_records(late, dates)
    assert len(problems) == 1 and "logistic's calibration read samples" in problems[0], problems
    unrecorded = copy.deepcopy(records)
    unrecorded[0]["models"]["logistic"]["calibration"] = None
    del unrecorded[1]["feature_selection"]["n_rows"]
    problems = verify_fold_records(unrecorded, dates)
    assert len(problems) == 2 and "logistic records no calibration" in problems[0] and \
        "feature selection does not record the samples it read" in problems[1], problems


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


def test_window_horizon_and_labeler_come_from_each_record(clean):
    dates, records = clean
    wider = copy.deepcopy(records)
    wider[1]["window"] = 60  # a fold trained with a 60-session window needs a longer embargo than it had
    assert any("fold" in p and "embargo too short" in p for p in _problems(dates, wider))
    unnamed = copy.deepcopy(records)
    del unnamed[0]["horizon"]
    assert any("does not say its window, horizon" in p for p in _problems(dates, unnamed))
    # cross-checked against the stored labels table
    assert any("differs from the stored labels" in p for p in _problems(dates, records, stored_labeler="jump"))
    assert any("market.regime_labels holds 'user'" in p for p in _problems(dates, records, stored_labeler="user"))


def test_oos_rows_outside_a_verified_test_span_are_reported(clean):
    from regime_platform.modeling.leakage import verify_oos_rows

    dates, records = clean
    rec = records[0]
    start = dates.index(dt.date.fromisoformat(rec["test_start"]))

    def rows(as_of_idx, fold=rec["fold"], horizon=H, shift=0):
        return pl.DataFrame({"model": "m", "fold": fold, "horizon": horizon,
                             "as_of": [dates[i] for i in as_of_idx],
                             "target_date": [dates[i + horizon + shift] for i in as_of_idx]})

    assert verify_oos_rows(records, rows([start, start + 1]), dates) == []
    assert any("outside the test span" in p for p in verify_oos_rows(records, rows([start - 1]), dates))
    assert any("not the session" in p for p in verify_oos_rows(records, rows([start], shift=1), dates))
    assert any("no fold record" in p for p in verify_oos_rows(records, rows([start], horizon=21), dates))
    assert verify_oos_rows(records, rows([])[:0], dates) != []
