"""The decision rule (minimum dwell / probability threshold) is causal and removes one-day flips."""
from __future__ import annotations

import numpy as np
import pytest

from regime_platform.modeling.decision import apply_min_dwell, count_flips


def _proba(seq, p=0.7):
    """Probabilities whose argmax follows ``seq`` (two regimes)."""
    seq = np.asarray(seq)
    out = np.empty((len(seq), 2))
    out[:, 1] = np.where(seq == 1, p, 1 - p)
    out[:, 0] = 1 - out[:, 1]
    return out


def test_dwell_one_is_the_argmax():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet([1, 1, 1], size=200)
    assert (apply_min_dwell(proba, 1) == proba.argmax(axis=1)).all()


def test_one_day_flips_are_removed_and_lasting_changes_kept_after_k_sessions():
    seq = [0] * 10 + [1] + [0] * 10 + [1, 1] + [0] * 5 + [1] * 10 + [0] * 5
    decided = apply_min_dwell(_proba(seq), 3)
    assert count_flips(np.asarray(seq)) == 6
    # the single and the double session of regime 1 are ignored; the lasting one is taken on its 3rd session
    expected = [0] * 10 + [0] + [0] * 10 + [0, 0] + [0] * 5 + [0, 0] + [1] * 8 + [1, 1] + [0] * 3
    assert decided.tolist() == expected
    assert count_flips(decided) == 2


def test_a_confident_forecast_flips_at_once_with_a_threshold():
    proba = _proba([0] * 5 + [1] + [0] * 5)
    proba[5] = [0.05, 0.95]
    assert apply_min_dwell(proba, 10).tolist() == [0] * 11
    assert apply_min_dwell(proba, 10, threshold=0.9).tolist() == [0] * 5 + [1] * 6


@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_causal_a_later_change_never_changes_an_earlier_decision(k):
    rng = np.random.default_rng(k)
    proba = rng.dirichlet([0.5, 0.5, 0.5], size=300)
    base = apply_min_dwell(proba, k, threshold=0.8)
    for cut in (1, 50, 150, 299):
        changed = proba.copy()
        changed[cut:] = rng.dirichlet([0.5, 0.5, 0.5], size=300 - cut)
        after = apply_min_dwell(changed, k, threshold=0.8)
        assert (after[:cut] == base[:cut]).all()
        assert (apply_min_dwell(proba[:cut], k, threshold=0.8) == base[:cut]).all()


def test_a_dwell_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1 session"):
        apply_min_dwell(_proba([0, 1]), 0)


def test_the_ledgers_one_step_rule_equals_the_rule_over_the_whole_history():
    from regime_platform.modeling.decision import next_decision

    rng = np.random.default_rng(11)
    for dwell in (2, 3, 5, 10):
        proba = rng.dirichlet([0.6, 0.6, 0.6], size=400)
        proba = np.repeat(proba, rng.integers(1, 6, size=400), axis=0)[:400]  # runs of equal argmax, like regimes
        whole = apply_min_dwell(proba, dwell)
        argmax = proba.argmax(axis=1)
        stepped = [int(argmax[0])]
        for i in range(1, len(proba)):  # only what a ledger stores: yesterday's decision and recent argmaxes
            stepped.append(next_decision(stepped[-1], argmax[max(0, i - dwell + 1): i + 1], dwell))
        assert stepped == whole.tolist(), dwell


def test_the_ledger_applies_a_models_dwell_from_its_stored_history():
    import datetime as dt

    import polars as pl

    from regime_platform.forecasting import ledger
    from regime_platform_tests.forecasting.test_ledger import D, FakeModel, features

    model = FakeModel(min_dwell=3)  # says regime 1 (0.7) today
    as_of = D(2018, 12, 17)
    # the two sessions before (Thursday and Friday), made by the same model version
    history = pl.DataFrame({"as_of": [as_of - dt.timedelta(days=d) for d in (4, 3)], "predicted_regime": [0, 0],
                            "probabilities": [[0.8, 0.2], [0.4, 0.6]], "model_version": [model.model_version] * 2})
    row = ledger.forecast_rows("SPY", [model], as_of, features(as_of), 0, "x", {"fake": history})
    assert row["predicted_regime"][0] == 0  # regime 1 led two sessions, not three: the decision stays
    assert row["probabilities"][0].to_list() == [0.3, 0.7]  # probabilities untouched
    history = history.with_columns(probabilities=pl.Series([[0.4, 0.6], [0.4, 0.6]]))
    row = ledger.forecast_rows("SPY", [model], as_of, features(as_of), 0, "x", {"fake": history})
    assert row["predicted_regime"][0] == 1  # three in a row: it flips
    assert ledger.forecast_rows("SPY", [FakeModel()], as_of, features(as_of), 0, "x", {"fake": history})[
        "predicted_regime"][0] == 1  # min_dwell 1: plain argmax
