"""Sequence samples: windows of sessions and the regime ``horizon`` sessions ahead.

Conventions, all in *session indices* into the list of dates:

* sample ``t`` is the window of sessions ``t - window + 1 … t`` (``t`` = the window's last day, the
  ``as_of`` of a forecast made after the close of ``t``);
* its target is the regime at session ``t + horizon``;
* a sample exists only if every row of its window has complete features (no NaN) and a target exists at
  ``t + horizon`` (``t + horizon < n_sessions`` and, when ``has_target`` is given, ``has_target[t + h]``).

Labels are integer arrays aligned to the sessions with ``-1`` for "no label" (NaN is accepted on input and
read as missing).
"""
from __future__ import annotations

import numpy as np

MISSING = -1


def complete_rows(X: np.ndarray) -> np.ndarray:
    """Boolean mask of sessions whose feature row has no NaN/inf."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_sessions, n_features), got shape {X.shape}")
    return np.isfinite(X).all(axis=1)


def as_label_array(regimes: np.ndarray | list) -> np.ndarray:
    """Labels as int64 with -1 for missing (NaN, None or negative)."""
    arr = np.asarray(regimes, dtype=object if isinstance(regimes, list) else None)
    if arr.dtype == object:
        arr = np.array([np.nan if v is None else v for v in arr], dtype=float)
    if np.issubdtype(arr.dtype, np.floating):
        out = np.full(arr.shape, MISSING, dtype=np.int64)
        ok = np.isfinite(arr)
        out[ok] = arr[ok].astype(np.int64)
    else:
        out = arr.astype(np.int64)
    out[out < 0] = MISSING
    return out


def sample_indices(
    X: np.ndarray,
    window: int,
    horizon: int,
    valid: np.ndarray | None = None,
    *,
    has_target: np.ndarray | None = None,
) -> np.ndarray:
    """Session indices ``t`` of every sample that exists (see module docstring), ascending.

    ``valid``: optional per-session mask of rows allowed inside a window, AND-ed with feature
    completeness (use it to exclude rows for any reason other than NaN). ``has_target``: optional
    per-session mask of sessions that carry a label; without it every session ``< n`` counts as labelled.
    """
    if window < 1 or horizon < 0:
        raise ValueError(f"window must be ≥ 1 and horizon ≥ 0 (got window={window}, horizon={horizon})")
    ok = complete_rows(X)
    n = ok.shape[0]
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (n,):
            raise ValueError(f"valid must have shape ({n},), got {valid.shape}")
        ok &= valid
    # window_ok[t] = all rows t-w+1..t ok  <=> count of bad rows in the window == 0
    bad = np.concatenate([[0], np.cumsum(~ok)])
    t = np.arange(window - 1, n - horizon)
    if t.size == 0:
        return t.astype(np.int64)
    window_ok = (bad[t + 1] - bad[t + 1 - window]) == 0
    if has_target is not None:
        has_target = np.asarray(has_target, dtype=bool)
        if has_target.shape != (n,):
            raise ValueError(f"has_target must have shape ({n},), got {has_target.shape}")
        window_ok &= has_target[t + horizon]
    return t[window_ok].astype(np.int64)


def gather_windows(X: np.ndarray, t_idx: np.ndarray, window: int) -> np.ndarray:
    """Windows ``X[t-w+1 … t]`` for each ``t`` in ``t_idx`` as float32 (n_samples, window, n_features)."""
    X = np.asarray(X, dtype=np.float32)
    t_idx = np.asarray(t_idx, dtype=np.int64)
    if t_idx.size and (t_idx.min() < window - 1 or t_idx.max() >= X.shape[0]):
        raise IndexError("a sample index has no complete window inside X")
    offsets = np.arange(-window + 1, 1)
    return np.ascontiguousarray(X[t_idx[:, None] + offsets[None, :]], dtype=np.float32)


def build_windows(
    X: np.ndarray,
    window: int,
    horizon: int,
    valid: np.ndarray | None = None,
    *,
    has_target: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """All samples of ``X`` (n_sessions, n_features): ``(t array, windows float32 (n, window, f))``.

    ``valid`` and ``has_target`` as in :func:`sample_indices`. Example (w=30, h=5, features complete from
    row 0, every session labelled): the first sample is t = 29, the last is t = n − 1 − 5.
    """
    t = sample_indices(X, window, horizon, valid, has_target=has_target)
    return t, gather_windows(X, t, window)


def targets_at(t_idx: np.ndarray, horizon: int, regimes: np.ndarray) -> np.ndarray:
    """Target of each sample: ``regimes[t + horizon]`` as int64 (``-1`` when missing or past the end)."""
    labels = as_label_array(regimes)
    t_idx = np.asarray(t_idx, dtype=np.int64)
    pos = t_idx + horizon
    out = np.full(t_idx.shape, MISSING, dtype=np.int64)
    inside = (pos >= 0) & (pos < labels.shape[0])
    out[inside] = labels[pos[inside]]
    return out


def known_at(t_idx: np.ndarray, known_regime: np.ndarray) -> np.ndarray:
    """Regime known after the close of ``t`` (``known_regime[t]``), ``-1`` when unknown."""
    labels = as_label_array(known_regime)
    t_idx = np.asarray(t_idx, dtype=np.int64)
    out = np.full(t_idx.shape, MISSING, dtype=np.int64)
    inside = (t_idx >= 0) & (t_idx < labels.shape[0])
    out[inside] = labels[t_idx[inside]]
    return out
