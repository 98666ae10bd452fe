"""The persistence anchor (REGIME_PERSISTENCE_ANCHOR): votes that stay at the known regime unless the model is sure of
a change, the anchor chosen on the tail inside the training span, the production model and the ledger applying the
same rule."""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from regime_platform.forecasting import ledger
from regime_platform.modeling.decision import ANCHOR_GRID, apply_min_dwell, votes
from regime_platform.modeling.production import ProductionModel, fit_final
from regime_platform.modeling.training import TrainingConfig
from regime_platform.modeling.walk_forward import walk_forward
from regime_platform.settings import Settings, SettingsError
from regime_platform_tests.modeling.test_training import H, W, refit_targets, synthetic

TAIL = TrainingConfig(window=W, horizon=H, max_folds=2, seed=0, min_dwell=1, tune_capacity=False,
                      persistence_anchor="tail")


def test_votes_stay_at_the_known_regime_unless_another_is_at_least_the_anchor():
    p = np.array([[0.55, 0.45], [0.85, 0.15], [0.3, 0.7], [0.1, 0.9], [0.95, 0.05]])
    known = np.array([1, 1, 0, 0, -1])
    np.testing.assert_array_equal(votes(p), [0, 0, 1, 1, 0])
    # row 0: the argmax 0 at 0.55 < 0.8 keeps the known 1; row 1: 0.85 departs; row 2: 0.7 keeps 0; row 3: 0.9
    # departs; row 4: nothing known, the vote stands
    np.testing.assert_array_equal(votes(p, known=known, anchor=0.8), [1, 0, 0, 1, 0])
    np.testing.assert_array_equal(votes(p, known=known, anchor=0.5), votes(p))  # any argmax of two is sure enough
    # with a risk-off threshold the vote departs to the risk-off regime only when it is also as probable as the anchor
    np.testing.assert_array_equal(votes(p, 1, 0.4, known=np.zeros(5, dtype=int), anchor=0.6), [0, 0, 1, 1, 0])
    # the dwell rule runs over the anchored votes
    np.testing.assert_array_equal(apply_min_dwell(p, 2, known=known, anchor=0.8), [1, 1, 0, 0, 0])
    with pytest.raises(ValueError, match="a persistence anchor needs the regime known at each session"):
        votes(p, anchor=0.8)
    with pytest.raises(ValueError, match="a known regime 2 is not one of the 2 regimes"):
        votes(p, known=np.array([2, 0, 0, 0, 0]), anchor=0.8)


def _anchor_choices(res, model="logistic"):
    return {rec["fold"]: rec["models"][model]["anchor_choice"] for rec in res.fold_records}


def test_the_tail_chooses_the_anchor_and_the_stored_decisions_apply_it():
    dates, X, names, r = synthetic(1800)
    res = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], TAIL, returns=r)
    for rec in res.fold_records:
        pick, info = rec["models"]["logistic"]["anchor_choice"], rec["models"]["logistic"]
        if not pick["candidates"]:  # a tail whose targets hold one regime cannot choose, and says so
            assert pick["anchor"] is None and "hold one regime" in pick["note"]
            continue
        assert [c["anchor"] for c in pick["candidates"]] == list(ANCHOR_GRID)
        best = max(c["score"] for c in pick["candidates"])
        assert pick["anchor"] == next(c["anchor"] for c in pick["candidates"] if c["score"] == best)
        assert info["persistence_anchor"] == pick["anchor"] and pick["scored_by"] == "macro_f1"
        assert rec["decision_rule"]["per_model_anchor"]["persistence"] is None  # baselines are never anchored
        # the stored decisions are the rule applied to the stored probabilities and known regimes
        rows = res.oos_predictions.filter((pl.col("model") == "logistic") & (pl.col("fold") == rec["fold"])).sort("as_of")
        known = rows["known_regime"].fill_null(-1).to_numpy()
        np.testing.assert_array_equal(
            rows["predicted_regime"].to_numpy(),
            apply_min_dwell(np.array(rows["probabilities"].to_list()), 1, known=known, anchor=pick["anchor"]))
    # the fold table says what each fold chose, though nothing else was left to the tail
    for row, rec in zip(res.fold_table().iter_rows(named=True), res.fold_records):
        anchor = rec["models"]["logistic"]["persistence_anchor"]
        assert (f"leaves the known regime at p ≥ {anchor}" if anchor is not None else "no anchor") in row["chosen"]
    # the anchors score differently on the tail and one is chosen: the choice is a real one
    assert any(len({c["score"] for c in pick["candidates"]}) > 1 and pick["anchor"] is not None
               for pick in _anchor_choices(res).values())


def test_the_anchor_choice_reads_nothing_past_the_folds_training_span():
    dates, X, names, r = synthetic(1800)
    res = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], TAIL, returns=r)
    first = next(rec for rec in res.fold_records if rec["models"]["logistic"]["anchor_choice"]["candidates"])
    cut = dates.index(first["train_target_end"]) + 1
    assert cut < len(dates)
    # every input and return after the fold's last training target, changed: that fold's choice — every
    # candidate's tail score — stays the same
    X2, r2 = X.copy(), r.copy()
    X2[cut:] = X2[cut:] * -3.0 + 1.0
    r2[cut:] = -r2[cut:] * 5.0
    planted = walk_forward(dates, X2, names, refit_targets(dates, r2), ["logistic"], TAIL, returns=r2)
    assert _anchor_choices(planted)[first["fold"]] == _anchor_choices(res)[first["fold"]]
    # the same change inside the tail moves the evidence: the test can see a change
    X3 = X.copy()
    X3[cut - 120:cut] = X3[cut - 120:cut] * -3.0 + 1.0
    moved = walk_forward(dates, X3, names, refit_targets(dates, r), ["logistic"], TAIL, returns=r)
    assert (_anchor_choices(moved)[first["fold"]]["candidates"]
            != _anchor_choices(res)[first["fold"]]["candidates"])


def test_a_fixed_anchor_keeps_the_known_regime_where_the_model_is_unsure():
    dates, X, names, r = synthetic(1800)
    config = TrainingConfig(window=W, horizon=H, max_folds=2, seed=0, persistence_anchor=0.9)
    fixed = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], config, returns=r)
    plain = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"],
                         TrainingConfig(window=W, horizon=H, max_folds=2, seed=0), returns=r)
    rows = fixed.oos_predictions.filter(pl.col("model") == "logistic").sort("as_of")
    P, known = np.array(rows["probabilities"].to_list()), rows["known_regime"].fill_null(-1).to_numpy()
    argmax = P.argmax(axis=1)
    expected = np.where((known < 0) | (P.max(axis=1) >= 0.9), argmax, known)
    np.testing.assert_array_equal(rows["predicted_regime"].to_numpy(), expected)
    assert (expected != argmax).sum() > 0  # the anchor holds the known regime where the argmax would have moved
    same = plain.oos_predictions.filter(pl.col("model") == "logistic").sort("as_of")
    np.testing.assert_array_equal(np.array(same["probabilities"].to_list()), P)  # probabilities untouched
    for m in ("persistence", "majority"):
        a = fixed.oos_predictions.filter(pl.col("model") == m).sort("as_of")
        b = plain.oos_predictions.filter(pl.col("model") == m).sort("as_of")
        assert a["predicted_regime"].to_list() == b["predicted_regime"].to_list()


def test_the_production_model_keeps_its_anchor_and_the_ledger_applies_it(tmp_path):
    dates, X, names, r = synthetic(1800)
    (prod,) = fit_final(dates, X, names, refit_targets(dates, r), ["logistic"],
                        TrainingConfig(window=W, horizon=H, seed=0, persistence_anchor=0.8), returns=r,
                        include_baselines=False, fit_date=dt.date(2024, 5, 1))
    assert prod.persistence_anchor == 0.8
    prod.save(tmp_path / "m")
    again = ProductionModel.load(tmp_path / "m")
    assert again.persistence_anchor == 0.8
    day = dt.date(2024, 5, 2)
    assert ledger.decide(again, day, np.array([0.3, 0.7]), None, known_today=0) == (
        0, "anchored to the known regime below p 0.8, dwell 1")
    assert ledger.decide(again, day, np.array([0.15, 0.85]), None, known_today=0)[0] == 1
    assert ledger.decide(again, day, np.array([0.3, 0.7]), None, known_today=None)[0] == 1  # nothing known
    # with a dwell the rule continues over the stored rows' probabilities and known regimes
    again.min_dwell = 2
    history = pl.DataFrame({"as_of": [dt.date(2024, 5, 1)], "predicted_regime": [0], "probabilities": [[0.3, 0.7]],
                            "known_regime": [0], "model_version": [again.model_version]})
    assert ledger.decide(again, day, np.array([0.1, 0.9]), history, known_today=0)[0] == 0  # yesterday held 0
    history = history.with_columns(probabilities=pl.Series([[0.1, 0.9]]))
    assert ledger.decide(again, day, np.array([0.1, 0.9]), history, known_today=0)[0] == 1


@pytest.mark.parametrize("value, parsed", [("off", None), ("tail", "tail"), ("0.9", 0.9), ("1", 1.0)])
def test_the_setting_parses(value, parsed):
    assert Settings(persistence_anchor=value).persistence_anchor_value() == parsed


@pytest.mark.parametrize("value", ["0.3", "2", "always"])
def test_an_anchor_that_is_no_probability_from_a_half_is_refused_in_one_sentence(value):
    with pytest.raises(SettingsError, match=rf"REGIME_PERSISTENCE_ANCHOR='{value}' is neither `off`, `tail` nor a "
                                            "probability between 0.5 and 1; use e.g. `tail` or 0.9."):
        Settings(persistence_anchor=value).validate()
