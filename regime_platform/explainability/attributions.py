"""Why a model forecasts what it does: captum attributions for the sequence models, permutation importance
for the scikit-learn models, and where the methods agree.

Everything here works on *scaled* windows ``(n, window, n_features)`` float32, the models' own input
(:mod:`regime_platform.modeling.sequences`, :mod:`regime_platform.modeling.scaling`). Time is reported as **lag**: lag 0 is the
window's last session ``t`` (the ``as_of`` of the forecast), lag ``window - 1`` its first.

Sequence models (``lstm``, ``cnn``; captum on the network's softmax probabilities, the explained output
being the probability of the regime each window is forecast to be):

* ``occlusion_feature`` — captum ``Occlusion`` with one feature over the whole window replaced by the
  baseline; value = mean |p(x) − p(x occluded)|. Does not resolve time (lag NULL).
* ``occlusion_time`` — ``Occlusion`` of a block of ``time_block`` consecutive sessions across all features,
  sliding by one session; a lag's value is the mean effect of the blocks that cover it (captum averages
  overlapping windows). Does not resolve features (feature ``ALL_FEATURES``).
* ``saliency`` — captum ``Saliency``: mean absolute input gradient, per feature and lag.
* ``input_x_gradient`` — captum ``InputXGradient``: mean |gradient × input|, per feature and lag.

**Baseline.** Occlusion replaces inputs by 0, which after the production scaler (fit on the training
windows) is each feature's **training-span mean**: "what if this feature had been at its usual level".
Gradient × input is measured from the same origin.

Per forecast regime: the windows forecast to be each regime, sampled to at most ``max_per_regime``
(seeded, recorded); the row with regime NULL ("all windows") is the forecast-share-weighted mean of the
per-regime means, so it stands for every window, not just the sample.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from regime_platform.calendar import SESSIONS_PER_YEAR
from regime_platform.modeling.sequences import gather_windows, sample_indices

RECENT_SESSIONS = SESSIONS_PER_YEAR  # the most recent year of sessions is what gets explained

ALL_FEATURES = "(all features)"
SEQUENCE_METHODS = ("occlusion_feature", "occlusion_time", "saliency", "input_x_gradient")
PERMUTATION_METHODS = ("permutation", "permutation_time")
METHOD_LABELS = {
    "occlusion_feature": "occlusion (feature)",
    "occlusion_time": "occlusion (time block)",
    "saliency": "saliency (abs. gradient)",
    "input_x_gradient": "abs. gradient × input",
    "permutation": "permutation (macro-F1 drop)",
    "permutation_time": "permutation of a session",
}
BASELINE_NOTE = ("occlusion replaces inputs by 0 after scaling = each feature's training-span mean "
                 "(the production scaler's fit span); gradient × input is measured from the same origin")

ATTRIBUTION_SCHEMA: dict[str, pl.DataType] = {
    "model": pl.String,
    "method": pl.String,
    "regime": pl.Int32,
    "feature": pl.String,
    "lag": pl.Int32,
    "value": pl.Float64,
    "spread": pl.Float64,
    "windows": pl.Int32,
}


# ---------------------------------------------------------------------------------------------- windows
def recent_windows(
    X_scaled: np.ndarray, window: int, sessions: int = RECENT_SESSIONS, *, last_t: int | None = None
) -> np.ndarray:
    """Session indices ``t`` of the complete windows ending in the last ``sessions`` sessions (≤ ``last_t``)."""
    t = sample_indices(X_scaled, window, 0)
    end = (X_scaled.shape[0] - 1) if last_t is None else last_t
    t = t[(t <= end) & (t > end - sessions)]
    if t.size == 0:
        raise ValueError(f"no complete {window}-session window ends in the last {sessions} sessions; "
                         "materialize features over a longer range first.")
    return t


def sample_rows(n: int, limit: int, seed: int = 0) -> np.ndarray:
    """All row positions when ``n ≤ limit``, else ``limit`` of them drawn without replacement (sorted)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


# ---------------------------------------------------------------------------------------------- captum
@dataclass
class AttributionSet:
    """Attributions of one model. ``maps[method][regime]`` (regime None = all windows):
    saliency / input_x_gradient (features, lags); occlusion_feature (features,); occlusion_time (lags,)."""

    model: str
    feature_names: list[str]
    window: int
    n_classes: int
    maps: dict[str, dict[int | None, np.ndarray]]
    available: dict[int | None, int]  # windows forecast as each regime (None = all)
    sampled: dict[int | None, int]  # windows attributed
    time_block: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    def regimes(self) -> list[int | None]:
        return [None] + [r for r in range(self.n_classes) if r in self.maps["saliency"]]

    def feature_scores(self, method: str, regime: int | None = None) -> np.ndarray:
        """One number per feature: the feature's value, or its sum over lags for a per-lag method."""
        values = self.maps[method][regime]
        if method == "occlusion_time":
            raise ValueError("occlusion_time does not resolve features")
        return values if values.ndim == 1 else values.sum(axis=1)

    def rows(self) -> pl.DataFrame:
        """Long rows for ``market.feature_attributions`` (lag NULL where a method does not resolve time)."""
        out: dict[str, list] = {c: [] for c in ATTRIBUTION_SCHEMA}

        def add(method, regime, feature, lag, value):
            out["model"].append(self.model)
            out["method"].append(method)
            out["regime"].append(regime)
            out["feature"].append(feature)
            out["lag"].append(lag)
            out["value"].append(float(value))
            out["spread"].append(None)
            out["windows"].append(self.sampled[regime])

        for method, by_regime in self.maps.items():
            for regime, values in by_regime.items():
                if method == "occlusion_time":
                    for lag, v in enumerate(values):
                        add(method, regime, ALL_FEATURES, lag, v)
                elif values.ndim == 1:
                    for name, v in zip(self.feature_names, values):
                        add(method, regime, name, None, v)
                else:
                    for j, name in enumerate(self.feature_names):
                        for lag, v in enumerate(values[j]):
                            add(method, regime, name, lag, v)
        return pl.DataFrame(out, schema=ATTRIBUTION_SCHEMA)

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "window": self.window,
            "time_block": self.time_block,
            "baseline": BASELINE_NOTE,
            "windows_available": {_key(r): n for r, n in self.available.items()},
            "windows_attributed": {_key(r): n for r, n in self.sampled.items()},
            "seconds": round(self.seconds, 2),
            "notes": self.notes,
            "top_features": {m: self.top_features(m) for m in SEQUENCE_METHODS if m != "occlusion_time"},
            "top_lags": {m: self.top_lags(m) for m in ("occlusion_time", "saliency", "input_x_gradient")},
        }

    def top_features(self, method: str, k: int = 5, regime: int | None = None) -> list[str]:
        scores = self.feature_scores(method, regime)
        return [self.feature_names[i] for i in np.argsort(-scores, kind="stable")[:k]]

    def top_lags(self, method: str, k: int = 5, regime: int | None = None) -> list[int]:
        values = self.maps[method][regime]
        per_lag = values if values.ndim == 1 else values.sum(axis=0)
        return [int(i) for i in np.argsort(-per_lag, kind="stable")[:k]]


def _key(regime: int | None) -> str:
    return "all" if regime is None else str(regime)


def _to_lags(per_time: np.ndarray) -> np.ndarray:
    """Reverse the time axis (last axis = time step 0 … w-1) so index 0 is lag 0 (the window's last day)."""
    return per_time[..., ::-1].copy()


def sequence_attributions(
    net: Any,
    windows: np.ndarray,
    feature_names: Sequence[str],
    *,
    model: str,
    n_classes: int,
    max_per_regime: int = 200,
    time_block: int = 1,
    seed: int = 0,
) -> AttributionSet:
    """captum Occlusion, Saliency and InputXGradient of ``net`` (a torch module mapping (n, w, f) float32
    windows to class logits) on ``windows``, per forecast regime and for all windows (module docstring)."""
    import torch
    from captum.attr import InputXGradient, Occlusion, Saliency

    started = time.perf_counter()
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    if windows.ndim != 3 or windows.shape[0] == 0:
        raise ValueError(f"windows must be a non-empty (n, window, features) array, got shape {windows.shape}")
    n, w, f = windows.shape
    if f != len(feature_names):
        raise ValueError(f"{len(feature_names)} feature names for windows with {f} features")
    time_block = max(1, min(int(time_block), w))

    class Probabilities(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return torch.softmax(self.inner(x), dim=1)

    was_training = net.training
    net.eval()
    forward = Probabilities(net).eval()
    try:
        with torch.no_grad():
            predicted = forward(torch.from_numpy(windows)).argmax(dim=1).numpy()
        maps: dict[str, dict[int | None, np.ndarray]] = {m: {} for m in SEQUENCE_METHODS}
        available: dict[int | None, int] = {None: n}
        sampled: dict[int | None, int] = {}
        for regime in range(n_classes):
            rows = np.flatnonzero(predicted == regime)
            available[regime] = int(rows.size)
            if rows.size == 0:
                continue
            rows = rows[sample_rows(rows.size, max_per_regime, seed + regime)]
            sampled[regime] = int(rows.size)
            x = torch.from_numpy(windows[rows])
            target = torch.full((rows.size,), regime, dtype=torch.long)
            occlusion = Occlusion(forward)
            by_feature = occlusion.attribute(x, sliding_window_shapes=(w, 1), strides=(1, 1), baselines=0.0,
                                             target=target, perturbations_per_eval=8)
            by_time = occlusion.attribute(x, sliding_window_shapes=(time_block, f), strides=(1, f), baselines=0.0,
                                          target=target, perturbations_per_eval=8)
            saliency = Saliency(forward).attribute(x.clone().requires_grad_(True), target=target, abs=True)
            ixg = InputXGradient(forward).attribute(x.clone().requires_grad_(True), target=target)
            maps["occlusion_feature"][regime] = by_feature[:, 0, :].abs().mean(dim=0).detach().numpy()
            maps["occlusion_time"][regime] = _to_lags(by_time[:, :, 0].abs().mean(dim=0).detach().numpy())
            maps["saliency"][regime] = _to_lags(saliency.abs().mean(dim=0).detach().numpy().T)
            maps["input_x_gradient"][regime] = _to_lags(ixg.abs().mean(dim=0).detach().numpy().T)
    finally:
        net.train(was_training)

    present = [r for r in range(n_classes) if r in sampled]
    weights = np.array([available[r] for r in present], dtype=np.float64)
    weights /= weights.sum()
    for method in SEQUENCE_METHODS:
        maps[method][None] = sum(wt * maps[method][r] for wt, r in zip(weights, present))
    sampled[None] = int(sum(sampled[r] for r in present))
    notes = []
    if any(sampled[r] < available[r] for r in present):
        notes.append(f"sampled at most {max_per_regime} windows per forecast regime (seed {seed}); "
                     "the all-windows row weights each regime by its share of forecasts")
    absent = [r for r in range(n_classes) if r not in sampled]
    if absent:
        notes.append(f"no window is forecast as regime {', '.join(map(str, absent))}: nothing to attribute there")
    return AttributionSet(model, list(feature_names), w, n_classes, maps, available, sampled, time_block,
                          time.perf_counter() - started, notes)


# ---------------------------------------------------------------------------------------------- production
@dataclass
class ProductionWindows:
    """Scaled windows of a production model ending in the most recent sessions, and where they lie."""

    t: np.ndarray  # session indices (window ends)
    windows: np.ndarray  # (n, window, features) float32, scaled by the model's own scaler
    first: dt.date
    last: dt.date
    after_training: int  # windows ending after the production fit's last training sample (truly unseen)


def production_windows(production: Any, X: np.ndarray, dates: Sequence[dt.date], sessions: int = RECENT_SESSIONS,
                       last_t: int | None = None) -> ProductionWindows:
    """The windows of ``production`` (a ``production.ProductionModel``) ending in the last ``sessions``
    sessions of raw features ``X`` (≤ ``last_t`` when given), scaled by its own scaler."""
    Xs = production.scaler.transform(np.asarray(X, dtype=np.float64))
    t = recent_windows(Xs, production.window, sessions, last_t=last_t)
    dates = list(dates)
    unseen = int(sum(dates[i] > production.train_end for i in t))
    return ProductionWindows(t, gather_windows(Xs, t, production.window), dates[t[0]], dates[t[-1]], unseen)
