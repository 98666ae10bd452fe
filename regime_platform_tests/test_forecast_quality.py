"""Forecast quality (issue 20): the decision rule in the walk-forward, and choices made inside the training span."""
from __future__ import annotations

import numpy as np

from regime_platform.decision import apply_min_dwell, count_flips
from regime_platform.training import TrainingConfig
from regime_platform.walk_forward import walk_forward
from regime_platform_tests.test_training import H, W, refit_targets, synthetic


def test_min_dwell_sets_each_models_decisions_per_fold_and_is_recorded():
    dates, X, names, r = synthetic(1800)
    cfg = TrainingConfig(window=W, horizon=H, max_folds=2, seed=0, min_dwell=5)
    res = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], cfg)
    oos = res.oos_predictions.sort("model", "as_of")
    plain = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"],
                         TrainingConfig(window=W, horizon=H, max_folds=2, seed=0)).oos_predictions.sort("model", "as_of")
    assert oos["probabilities"].to_list() == plain["probabilities"].to_list()  # probabilities untouched
    total_flips = {"dwell": 0, "argmax": 0}
    for (model, fold), rows in oos.group_by(["model", "fold"]):
        proba = np.array(rows.sort("as_of")["probabilities"].to_list())
        predicted = rows.sort("as_of")["predicted_regime"].to_numpy()
        if model == "logistic":
            assert (predicted == apply_min_dwell(proba, 5)).all()
            total_flips["dwell"] += count_flips(predicted)
            total_flips["argmax"] += count_flips(proba.argmax(axis=1))
        else:  # baselines are not smoothed: persistence must stay the regime known at t
            assert (predicted == proba.argmax(axis=1)).all()
    assert total_flips["dwell"] < total_flips["argmax"]
    for rec in res.fold_records:
        assert rec["decision_rule"]["min_dwell"] == 5
        assert rec["decision_rule"]["per_model"] == {"logistic": 5, "majority": 1, "persistence": 1}
