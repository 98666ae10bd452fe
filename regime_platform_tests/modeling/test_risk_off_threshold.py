"""The economic decision threshold (REGIME_RISK_OFF_THRESHOLD): votes, the tail's choice inside the training span, the
production model and the ledger applying the same rule."""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from regime_platform.forecasting import ledger
from regime_platform.modeling.decision import THRESHOLD_GRID, apply_min_dwell, votes
from regime_platform.modeling.production import ProductionModel, fit_final
from regime_platform.modeling.training import TrainingConfig
from regime_platform.modeling.walk_forward import walk_forward
from regime_platform.settings import Settings, SettingsError
from regime_platform_tests.modeling.test_training import H, W, refit_targets, synthetic

TAIL = TrainingConfig(window=W, horizon=H, max_folds=2, seed=0, min_dwell=1, tune_capacity=False,
                      risk_off_threshold="tail")


def test_votes_go_risk_off_at_the_threshold_and_otherwise_to_the_likeliest_other_regime():
    p = np.array([[0.5, 0.2, 0.3], [0.7, 0.25, 0.05], [0.2, 0.1, 0.7], [0.6, 0.1, 0.3]])
    np.testing.assert_array_equal(votes(p), [0, 0, 2, 0])
    # risk-off regime 2 at p >= 0.3: rows 0 and 2 (0.3 exactly counts), else the argmax of regimes 0 and 1
    np.testing.assert_array_equal(votes(p, risk_off=2, risk_off_threshold=0.3), [2, 0, 2, 2])
    np.testing.assert_array_equal(votes(p, risk_off=1, risk_off_threshold=0.21), [0, 1, 2, 0])
    with pytest.raises(ValueError, match="risk-off regime 3 is not one of the 3 regimes"):
        votes(p, risk_off=3, risk_off_threshold=0.3)
    # the dwell rule runs over the votes: two sessions of risk-off votes are needed with dwell 2
    seq = np.array([[0.8, 0.2], [0.65, 0.35], [0.6, 0.4], [0.9, 0.1]])
    np.testing.assert_array_equal(apply_min_dwell(seq, 2, risk_off=1, risk_off_threshold=0.3), [0, 0, 1, 1])
    np.testing.assert_array_equal(apply_min_dwell(seq, 1, risk_off=1, risk_off_threshold=0.3), [0, 1, 1, 0])


def _threshold_choices(res):
    return {rec["fold"]: {m: info["inner_validation"]["risk_off_threshold"] for m, info in rec["models"].items()
                          if info["inner_validation"]} for rec in res.fold_records}


def test_the_tail_chooses_the_threshold_by_its_own_backtest_and_reads_nothing_past_the_span():
    dates, X, names, r = synthetic(1800)
    res = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], TAIL, returns=r)
    chosen = _threshold_choices(res)
    for rec in res.fold_records:
        pick = chosen[rec["fold"]]["logistic"]
        assert [c["threshold"] for c in pick["candidates"]] == list(THRESHOLD_GRID)
        best = max(c["tail_sharpe"] for c in pick["candidates"])
        assert pick["threshold"] == next(c["threshold"] for c in pick["candidates"] if c["tail_sharpe"] == best)
        info = rec["models"]["logistic"]
        assert info["risk_off_threshold"] == pick["threshold"]
        assert info["threshold_guards"] == (rec["risk_off_regime"] if pick["threshold"] is not None else None)
        # the stored decisions are the rule applied to the stored probabilities, fold by fold in time order
        rows = res.oos_predictions.filter((pl.col("model") == "logistic") & (pl.col("fold") == rec["fold"])).sort("as_of")
        np.testing.assert_array_equal(
            rows["predicted_regime"].to_numpy(),
            apply_min_dwell(np.array(rows["probabilities"].to_list()), 1, risk_off=info["threshold_guards"],
                            risk_off_threshold=info["risk_off_threshold"]))
        assert rec["decision_rule"]["risk_off_threshold"] == "tail"
    # returns after the first fold's last training target, made five times worse and of the other sign: the choice
    # (every candidate's tail Sharpe included) stays the same; returns inside the tail move the evidence
    first = res.fold_records[0]
    cut = dates.index(first["train_target_end"]) + 1
    after = r.copy()
    after[cut:] = -after[cut:] * 5.0
    planted = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], TAIL, returns=after)
    assert _threshold_choices(planted)[first["fold"]] == chosen[first["fold"]]
    inside = r.copy()
    inside[cut - 60:cut] = -inside[cut - 60:cut] * 5.0
    moved = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], TAIL, returns=inside)
    assert (_threshold_choices(moved)[first["fold"]]["logistic"]["candidates"]
            != chosen[first["fold"]]["logistic"]["candidates"])


def test_a_fixed_threshold_guards_each_folds_risk_off_regime_and_leaves_the_baselines_alone():
    dates, X, names, r = synthetic(1800)
    fixed = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"],
                         TrainingConfig(window=W, horizon=H, max_folds=2, seed=0, risk_off_threshold=0.2), returns=r)
    plain = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"],
                         TrainingConfig(window=W, horizon=H, max_folds=2, seed=0), returns=r)
    changed = 0
    for rec in fixed.fold_records:
        off = rec["risk_off_regime"]
        assert rec["models"]["logistic"]["threshold_guards"] == off and rec["models"]["persistence"]["risk_off_threshold"] is None
        rows = fixed.oos_predictions.filter((pl.col("model") == "logistic") & (pl.col("fold") == rec["fold"]))
        P = np.array(rows["probabilities"].to_list())
        np.testing.assert_array_equal(rows["predicted_regime"].to_numpy(),
                                      np.where(P[:, off] >= 0.2, off, 1 - off))
        changed += int((rows["predicted_regime"].to_numpy() != P.argmax(axis=1)).sum())
    assert changed > 0  # the threshold below 1/2 goes flat where the argmax would not
    for m in ("persistence", "majority"):
        a = fixed.oos_predictions.filter(pl.col("model") == m).sort("as_of")
        b = plain.oos_predictions.filter(pl.col("model") == m).sort("as_of")
        assert a["predicted_regime"].to_list() == b["predicted_regime"].to_list()
    with pytest.raises(ValueError, match="needs the span's daily returns"):
        walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"],
                     TrainingConfig(window=W, horizon=H, max_folds=1, risk_off_threshold=0.2))


def test_the_production_model_keeps_its_threshold_and_the_ledger_applies_it(tmp_path):
    dates, X, names, r = synthetic(1800)
    (prod,) = fit_final(dates, X, names, refit_targets(dates, r), ["logistic"],
                        TrainingConfig(window=W, horizon=H, seed=0, risk_off_threshold=0.25), returns=r,
                        include_baselines=False, fit_date=dt.date(2024, 5, 1))
    assert prod.risk_off_threshold == 0.25 and prod.risk_off_regime in (0, 1)
    prod.save(tmp_path / "m")
    again = ProductionModel.load(tmp_path / "m")
    assert (again.risk_off_regime, again.risk_off_threshold) == (prod.risk_off_regime, 0.25)
    off = again.risk_off_regime
    p = np.zeros(2)
    p[off], p[1 - off] = 0.3, 0.7  # the argmax is the other regime; the threshold goes risk-off
    decision, note = ledger.decide(again, dt.date(2024, 5, 2), p, None)
    assert decision == off and note == "risk-off at p ≥ 0.25, dwell 1"
    p[off], p[1 - off] = 0.2, 0.8
    assert ledger.decide(again, dt.date(2024, 5, 2), p, None)[0] == 1 - off


@pytest.mark.parametrize("value, parsed", [("off", None), ("tail", "tail"), ("0.3", 0.3), (" TAIL ", "tail")])
def test_the_setting_parses(value, parsed):
    assert Settings(risk_off_threshold=value.strip().lower()).risk_off_threshold_value() == parsed


@pytest.mark.parametrize("value", ["1.5", "0", "often"])
def test_a_threshold_that_is_no_probability_is_refused_in_one_sentence(value):
    with pytest.raises(SettingsError, match=rf"REGIME_RISK_OFF_THRESHOLD='{value}' is neither `off`, `tail` nor a "
                                            "probability between 0 and 1; use e.g. `tail` or 0.3."):
        Settings(risk_off_threshold=value).validate()
