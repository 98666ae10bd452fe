"""Explainability assets materialized in-process on a reduced run: tables, artifacts and inline PNGs."""
from __future__ import annotations

import base64
import datetime as dt
import re

import dagster as dg
import numpy as np
import polars as pl
import pytest

from regime_platform import storage as wh
from regime_platform.defs.explainability.assets import (
    PermutationConfig,
    SequenceAttributionConfig,
    attribution_agreement,
    permutation_importance,
    regime_profiles,
    sequence_attributions,
)
from regime_platform.defs.labels.assets import regime_labels
from regime_platform.defs.modeling.assets import model_assets, walk_forward_targets
from regime_platform.features.compute import compute_features, model_feature_set
from regime_platform.ingestion.sources import SampleSource
from regime_platform.storage.reports import Report
from regime_platform_tests.conftest import materialize_ticker, platform_resources

MODELS = {a.key.to_user_string(): a for a in model_assets}
EXPLAINABILITY = [sequence_attributions, permutation_importance, attribution_agreement, regime_profiles]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def seed_prices_and_features(resources, start: dt.date, end: dt.date) -> None:
    """market.ohlcv and market.features written by the domain code directly: the partitioned assets cost
    Dagster ~15 ms of bookkeeping per session (their own tests cover them), and this group reads only the tables."""
    bars = SampleSource().fetch("SPY", start, end).with_columns(
        ticker=pl.lit("SPY"), source=pl.lit("sample:^GSPC"), ingested_at=pl.lit(dt.datetime(2026, 1, 1)))
    with resources["warehouse"].connect() as con:
        wh.replace_rows(con, "ohlcv", bars)
        wh.replace_rows(con, "features", compute_features(bars))


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    """Prices 2010-2018, jump labels, the four models (one fold, one epoch), then the explainability group."""
    root = tmp_path_factory.mktemp("explainability")
    # no capacity search: this group explains whatever was fit (the search has its own tests)
    resources = platform_resources(root, epochs=1, max_folds=1, inner_validation=False)
    seed_prices_and_features(resources, dt.date(2010, 1, 4), dt.date(2018, 12, 31))
    assert materialize_ticker([regime_labels], resources).success
    models = [MODELS[f"{m}_model"] for m in ("lstm", "cnn", "random_forest", "logistic")]
    assert materialize_ticker([walk_forward_targets, *models], resources).success
    light = dg.RunConfig(ops={  # fewer windows and repeats than the defaults: the test checks the plumbing
        "sequence_attributions": SequenceAttributionConfig(max_windows_per_regime=80),
        "permutation_importance": PermutationConfig(repeats=3)})
    result = materialize_ticker([walk_forward_targets, *models, *EXPLAINABILITY], resources, run_config=light,
                                selection=[a.key for a in EXPLAINABILITY])
    assert result.success
    return resources, root, result


def inline_pngs(metadata) -> dict[str, bytes]:
    out = {}
    for key, value in metadata.items():
        if isinstance(value, dg.MarkdownMetadataValue):
            match = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)\)", value.value)
            if match:
                out[key] = base64.b64decode(match.group(1))
    return out


@pytest.mark.parametrize("asset, expected", [
    ("sequence_attributions", {"heatmap_lstm", "heatmap_cnn", "feature_ranking"}),
    ("permutation_importance", {"permutation_importance"}),
    ("attribution_agreement", {"agreement"}),
    ("regime_profiles", {"transition_matrix", "regime_timeline", "refit_stability"}),
])
def test_every_plot_is_inline_and_on_disk(explained, asset, expected):
    _, root, result = explained
    metadata = result.asset_materializations_for_node(asset)[0].metadata
    pngs = inline_pngs(metadata)
    assert set(pngs) == expected
    for key, png in pngs.items():
        assert png.startswith(PNG_MAGIC) and len(png) <= 150_000, key
        path = metadata[f"{key}_file"].value
        assert open(path, "rb").read() == png
    assert metadata["ticker"].value == "SPY"
    artifact = Report.load(root / "artifacts" / asset / "SPY")
    assert {n.removesuffix(".png") for n in artifact.figures} == expected
    assert not list((root / "artifacts" / asset / "SPY").rglob(".*.tmp"))  # no temporary file left behind
    assert len(list((root / "artifacts" / asset / "SPY").glob("generation-*"))) == 1  # one generation, current
    assert metadata["seconds"].value < 120


def test_feature_attributions_table(explained):
    resources, _, result = explained
    rows = resources["warehouse"].read("SELECT * FROM market.feature_attributions")
    assert set(rows["model"].unique()) == {"lstm", "cnn", "random_forest", "logistic"}
    assert set(rows["method"].unique()) == {"occlusion_feature", "occlusion_time", "saliency", "input_x_gradient",
                                            "permutation", "permutation_time"}
    per_lag = rows.filter(rows["method"].is_in(["saliency", "input_x_gradient"]) & rows["regime"].is_null())
    inputs = model_feature_set(resources["settings"].settings().features)  # what the models read (REGIME_FEATURES)
    assert per_lag.height == 2 * 2 * len(inputs) * 30  # two models × two methods × features × lags
    assert set(per_lag["feature"].unique()) == set(inputs)
    no_time = rows.filter(rows["method"].is_in(["occlusion_feature", "permutation"]))
    assert no_time["lag"].null_count() == no_time.height
    spread = rows.filter(rows["method"] == "permutation")["spread"].to_numpy()
    assert np.isfinite(spread).all()
    meta = result.asset_materializations_for_node("sequence_attributions")[0].metadata
    assert "training-span mean" in meta["baseline"].value
    assert meta["windows_attributed"].value > 0


def test_regime_profiles_table_and_refits(explained):
    resources, _, result = explained
    rows = resources["warehouse"].read("SELECT * FROM market.regime_profiles")
    stored = rows.filter(rows["scope"] == "stored")
    shares = stored.filter(stored["statistic"] == "share")["value"].to_numpy()
    assert np.isclose(shares.sum(), 1.0)
    refit = rows.filter(rows["scope"] == "refit")
    assert refit["fold"].n_unique() == 1  # max_folds=1: one labeler refit, on the fold's training span
    agreement = refit.filter(refit["statistic"] == "agreement")["value"].to_numpy()
    assert ((agreement >= 0) & (agreement <= 1)).all()
    meta = result.asset_materializations_for_node("regime_profiles")[0].metadata
    assert "refit on 1 of 1" in meta["refits"].value and "stored fold targets" in meta["refits"].value
