import numpy as np
import pytest

from regime_platform.modeling.sequences import (
    as_label_array,
    build_windows,
    gather_windows,
    known_at,
    sample_indices,
    targets_at,
)

W, H = 30, 5


def _X(n=200, f=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, f))


def test_first_and_last_sample_with_complete_features():
    X = _X()
    t, win = build_windows(X, W, H)
    assert t[0] == W - 1
    assert t[-1] == len(X) - 1 - H
    assert len(t) == len(X) - (W - 1) - H
    assert win.shape == (len(t), W, X.shape[1])
    assert win.dtype == np.float32


def test_window_is_sessions_t_minus_w_plus_1_to_t():
    X = _X()
    t, win = build_windows(X, W, H)
    for k in (0, 17, len(t) - 1):
        np.testing.assert_array_equal(win[k], X[t[k] - W + 1 : t[k] + 1].astype(np.float32))
        np.testing.assert_array_equal(win[k][-1], X[t[k]].astype(np.float32))


def test_window_with_missing_row_is_excluded():
    X = _X()
    X[100, 1] = np.nan
    t = sample_indices(X, W, H)
    # every window containing row 100 (t = 100 … 129) is gone, its neighbours are not
    assert not np.isin(np.arange(100, 100 + W), t).any()
    assert 99 in t and 100 + W in t


def test_warm_up_rows_shift_the_first_sample():
    X = _X()
    X[:20, 0] = np.nan  # warm-up: first complete row is 20
    t = sample_indices(X, W, H)
    assert t[0] == 20 + W - 1


def test_valid_mask_and_has_target():
    X = _X()
    valid = np.ones(len(X), bool)
    valid[50] = False
    assert 50 + W - 1 not in sample_indices(X, W, H, valid)
    has_target = np.ones(len(X), bool)
    has_target[150] = False  # no label at 150 → sample t = 145 has no target
    t = sample_indices(X, W, H, has_target=has_target)
    assert 150 - H not in t and 150 - H - 1 in t


def test_target_of_sample_t_is_regime_at_t_plus_h():
    X = _X()
    regimes = np.arange(len(X)) % 3
    t, _ = build_windows(X, W, H)
    y = targets_at(t, H, regimes)
    np.testing.assert_array_equal(y, regimes[t + H])
    # past the end / missing → -1
    assert targets_at(np.array([len(X) - 1]), H, regimes)[0] == -1
    reg = regimes.astype(float)
    reg[40] = np.nan
    assert targets_at(np.array([40 - H]), H, reg)[0] == -1


def test_known_at_and_label_arrays():
    assert as_label_array([0, None, 2, -1]).tolist() == [0, -1, 2, -1]
    assert as_label_array(np.array([1.0, np.nan])).tolist() == [1, -1]
    assert known_at(np.array([0, 2]), np.array([5, 6, 7])).tolist() == [5, 7]


def test_gather_windows_rejects_incomplete_window():
    with pytest.raises(IndexError):
        gather_windows(_X(), np.array([5]), W)
