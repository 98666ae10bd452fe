"""Attribution methods on models that by construction use one feature at one lag: each must find it."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from regime_platform import explainability as explain
from regime_platform.models import make_model

N, WINDOW, FEATURES = 300, 12, 5
FEATURE, LAG = 3, 4  # the only input the sequence net reads: feature 3, four sessions before t
NAMES = [f"feature_{i}" for i in range(FEATURES)]


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(N, WINDOW, FEATURES)).astype(np.float32)


class OneInputNet(torch.nn.Module):
    """Logits (0, 3·x[feature, lag]): the forecast depends on one feature at one lag and nothing else."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = 3.0 * x[:, WINDOW - 1 - LAG, FEATURE]
        return torch.stack([torch.zeros_like(v), v], dim=1)


@pytest.fixture(scope="module")
def attributions(windows) -> explain.AttributionSet:
    return explain.sequence_attributions(OneInputNet(), windows, NAMES, model="one_input", n_classes=2,
                                         max_per_regime=100, seed=1)


@pytest.mark.parametrize("method", ["occlusion_feature", "saliency", "input_x_gradient"])
@pytest.mark.parametrize("regime", [None, 0, 1])
def test_captum_methods_rank_the_used_feature_first(attributions, method, regime):
    scores = attributions.feature_scores(method, regime)
    assert int(np.argmax(scores)) == FEATURE
    assert np.delete(scores, FEATURE).max() < 1e-6 * scores[FEATURE]  # nothing else matters at all


@pytest.mark.parametrize("method", ["occlusion_time", "saliency", "input_x_gradient"])
def test_captum_methods_that_resolve_time_rank_the_used_lag_first(attributions, method):
    assert attributions.top_lags(method, k=1) == [LAG]
    values = attributions.maps[method][None]
    if values.ndim == 2:  # features × lags: the one used cell holds everything
        assert np.unravel_index(np.argmax(values), values.shape) == (FEATURE, LAG)


def test_sampling_is_recorded_and_rows_follow_the_table_contract(attributions, windows):
    assert attributions.available[None] == N
    assert attributions.available[0] + attributions.available[1] == N
    assert attributions.sampled[0] == min(100, attributions.available[0])
    assert any("sampled at most 100" in note for note in attributions.notes)
    rows = attributions.rows()
    assert rows.columns[:6] == ["model", "method", "regime", "feature", "lag", "value"]
    assert rows.filter(pl.col("method") == "occlusion_feature")["lag"].null_count() == FEATURES * 3
    assert rows.filter(pl.col("method") == "occlusion_time")["feature"].unique().to_list() == [explain.ALL_FEATURES]
    assert rows.filter(pl.col("method") == "saliency").height == 3 * FEATURES * WINDOW  # all + two regimes


@pytest.mark.parametrize("name, params", [("cnn", {"channels": 4}), ("lstm", {"hidden": 4})])
def test_real_sequence_networks_run_through_captum(windows, name, params):
    """The real LSTM and CNN (the model's own net_) give finite maps of the right shapes."""
    y = (windows[:, -1 - LAG, FEATURE] > 0).astype(int)
    model = make_model(name, epochs=1, **params).fit(windows, y, n_classes=2)
    result = explain.sequence_attributions(model.net_, windows[:40], NAMES, model=name, n_classes=2)
    assert result.maps["saliency"][None].shape == (FEATURES, WINDOW)
    assert result.maps["occlusion_time"][None].shape == (WINDOW,)
    assert all(np.isfinite(v).all() for by_regime in result.maps.values() for v in by_regime.values())
    assert not model.net_.training  # left in evaluation mode


@pytest.mark.parametrize("name", ["logistic", "random_forest"])
def test_permutation_importance_ranks_the_used_feature_and_lag_first(windows, name):
    """Targets depend on feature 3 on the window's last day only; the sklearn models read the last row."""
    y = (windows[:, -1, FEATURE] > 0).astype(int)
    model = make_model(name, **({"n_estimators": 50, "n_jobs": 1} if name == "random_forest" else {}))
    model.fit(windows, y, n_classes=2)
    result = explain.permutation_importances(model, windows, y, NAMES, name=name, n_classes=2, n_repeats=4)
    ranking = result.ranking()
    assert ranking["feature"][0] == NAMES[FEATURE]
    assert ranking["mean_drop"][0] > 0.3 and ranking["mean_drop"][1] < 0.05
    lag_means = result.by_lag.mean(axis=1)
    assert int(np.argmax(lag_means)) == 0 and np.delete(lag_means, 0).max() < 0.05
    assert result.by_feature.shape == (FEATURES, 4)
    rows = result.rows()
    assert rows.filter(pl.col("method") == "permutation")["lag"].null_count() == FEATURES
    assert rows["spread"].is_not_null().all()


def test_permutation_adapter_identity_reproduces_the_windows(windows):
    adapter = explain.WindowPermutationAdapter(make_model("logistic").fit(windows, (windows[:, -1, 0] > 0).astype(int),
                                                                         n_classes=2), windows, by="lag")
    assert np.array_equal(adapter.assemble(adapter.identity()), windows)
    shuffled = adapter.identity()
    shuffled[:, 2] = shuffled[::-1, 2]  # lag 2 of every window taken from another window
    assembled = adapter.assemble(shuffled)
    assert np.array_equal(assembled[:, WINDOW - 1 - 2], windows[::-1, WINDOW - 1 - 2])
    assert np.array_equal(np.delete(assembled, WINDOW - 3, axis=1), np.delete(windows, WINDOW - 3, axis=1))


def test_method_agreement_names_consensus_and_disputed_features():
    def rows(model, method, scores):
        return pl.DataFrame({"model": model, "method": method, "regime": None, "feature": list(scores),
                             "lag": None, "value": list(scores.values())},
                            schema_overrides={"regime": pl.Int32, "lag": pl.Int32})

    frame = pl.concat([
        rows("a", "saliency", {"x": 5.0, "y": 1.0, "z": 0.5, "w": 0.1}),
        rows("a", "occlusion_feature", {"x": 4.0, "y": 2.0, "z": 0.1, "w": 0.2}),
        rows("b", "permutation", {"x": 0.3, "y": 0.1, "z": 0.0, "w": 0.9}),
    ])
    agreement = explain.method_agreement(frame, top_k=1)
    assert agreement.consensus == ["x"]
    assert agreement.disputed == ["w"]
    assert agreement.ranks.filter(pl.col("feature") == "x")["a · saliency"].item() == 1
    assert agreement.pairs.height == 3
    assert "`x`" in agreement.to_markdown()
