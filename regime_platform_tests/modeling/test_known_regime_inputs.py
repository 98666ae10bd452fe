"""The regime known at t as a model input (TrainingConfig.known_regime_input): causal columns from each fold's own known
regime, appended to the fold's samples, left out for a user's file unless asked for."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from regime_platform.modeling.known_regime_inputs import input_names, known_regime_columns
from regime_platform.modeling.production import fit_final
from regime_platform.modeling.training import TrainingConfig
from regime_platform.modeling.walk_forward import walk_forward
from regime_platform_tests.modeling.test_training import H, W, given_targets, refit_targets, synthetic

ON = TrainingConfig(window=W, horizon=H, max_folds=2, seed=0, min_dwell=1, known_regime_input="on")


def test_the_columns_are_the_one_hot_known_regime_and_the_log_run_length():
    known = np.array([-1, -1, 0, 0, 0, 1, 1, -1, 1, 1])
    cols = known_regime_columns(known, 2)
    np.testing.assert_array_equal(cols[:, 0], [0, 0, 1, 1, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(cols[:, 1], [0, 0, 0, 0, 0, 1, 1, 0, 1, 1])
    # the run restarts at a change and where nothing is known
    np.testing.assert_allclose(cols[:, 2], np.log1p([0, 0, 0, 1, 2, 0, 1, 0, 0, 1]))
    assert input_names(2) == ["known_regime_0", "known_regime_1", "sessions_since_change"]
    with pytest.raises(ValueError, match="a known regime id is ≥ n_classes=2"):
        known_regime_columns(np.array([0, 2]), 2)


def test_each_row_reads_the_known_regime_through_its_own_session_only():
    rng = np.random.default_rng(3)
    known = np.repeat(rng.integers(0, 3, 80), rng.integers(10, 30, 80))[:600]
    cols = known_regime_columns(known, 3)
    for t in (0, 57, 300, 599):
        planted = known.copy()
        planted[t + 1:] = rng.integers(-1, 3, planted.size - t - 1)  # everything after t, changed
        np.testing.assert_array_equal(known_regime_columns(planted, 3)[: t + 1], cols[: t + 1])
    # and a change at t moves row t: the columns do read the known regime
    moved = known.copy()
    moved[300] = (moved[300] + 1) % 3
    assert not np.array_equal(known_regime_columns(moved, 3)[300], cols[300])


def _rows(res, model="logistic"):
    return res.oos_predictions.filter(pl.col("model") == model).sort("as_of")


def test_the_walk_forward_fits_on_the_folds_own_known_regime_and_records_it():
    dates, X, names, r = synthetic(1800)
    on = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], ON, returns=r)
    off = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"],
                       TrainingConfig(window=W, horizon=H, max_folds=2, seed=0, min_dwell=1), returns=r)
    for rec in on.fold_records:
        assert rec["features"] == [*names, *input_names(rec["n_classes"])]
        assert rec["known_regime_input"] == {"setting": "on", "added": input_names(rec["n_classes"]), "note": ""}
        assert len(rec["scaler"]["mean"]) == len(names) + rec["n_classes"] + 1
    assert all("known_regime_input" not in rec for rec in off.fold_records)  # off: the records of before
    a, b = _rows(on), _rows(off)
    assert a["as_of"].to_list() == b["as_of"].to_list()
    assert not np.allclose(np.array(a["probabilities"].to_list()), np.array(b["probabilities"].to_list()))
    # baselines read nothing of it
    assert _rows(on, "persistence")["predicted_regime"].to_list() == _rows(off, "persistence")["predicted_regime"].to_list()


def test_the_input_reads_nothing_past_the_folds_training_span():
    dates, X, names, r = synthetic(1800)
    res = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], ON, returns=r)
    first = res.fold_records[0]
    cut = dates.index(first["train_target_end"]) + 1
    # every input and return after the fold's last training target changed — the labeler's data included, so its
    # online label after the span changes too: the fold's fit (scaler, capacity, what its test rows read up to the
    # cut) is the same
    X2, r2 = X.copy(), r.copy()
    X2[cut:] = X2[cut:] * -3.0 + 1.0
    r2[cut:] = -r2[cut:] * 5.0
    planted = walk_forward(dates, X2, names, refit_targets(dates, r2), ["logistic"], ON, returns=r2)
    rec2 = planted.fold_records[0]
    assert rec2["scaler"] == first["scaler"] and rec2["models"]["logistic"]["params"] == first["models"]["logistic"]["params"]
    assert rec2["models"]["logistic"]["min_dwell"] == first["models"]["logistic"]["min_dwell"]
    # the same change inside the span moves the fit: the test can see one
    X3, r3 = X.copy(), r.copy()
    r3[cut - 300:cut] = -r3[cut - 300:cut] * 5.0
    moved = walk_forward(dates, X3, names, refit_targets(dates, r3), ["logistic"], ON, returns=r3)
    assert moved.fold_records[0]["scaler"] != first["scaler"]


def test_a_users_file_is_left_out_under_on_and_used_under_always():
    dates, X, names, r = synthetic(1800)
    targets, _, _ = given_targets(dates, r)
    on = walk_forward(dates, X, names, targets, ["logistic"], ON, returns=r)
    for rec in on.fold_records:
        assert rec["features"] == names and rec["known_regime_input"]["added"] == []
        assert "known_regime_input='always' adds it" in rec["known_regime_input"]["note"]
    always = walk_forward(dates, X, names, targets, ["logistic"],
                          TrainingConfig(window=W, horizon=H, max_folds=2, seed=0, min_dwell=1,
                                         known_regime_input="always"), returns=r)
    assert all(rec["features"] == [*names, *input_names(rec["n_classes"])] for rec in always.fold_records)


def test_a_production_fit_with_the_input_is_refused_in_one_sentence():
    dates, X, names, r = synthetic(1800)
    with pytest.raises(ValueError, match=r"known_regime_input='on' is a walk-forward measurement .*fit production "
                                         r"with known_regime_input='off'\.$"):
        fit_final(dates, X, names, refit_targets(dates, r), ["logistic"], ON, returns=r, include_baselines=False)
    with pytest.raises(ValueError, match=r"^known_regime_input='yes' is unknown; use off, on or always\.$"):
        TrainingConfig(known_regime_input="yes")
