"""The decision rule (minimum dwell / probability threshold) is causal and removes one-day flips."""
from __future__ import annotations

import numpy as np
import pytest

from regime_platform.decision import apply_min_dwell, count_flips


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
