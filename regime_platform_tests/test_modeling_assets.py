"""Model assets materialized in-process on the sample: walk-forward rows, production artifacts, no_leakage."""
from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pytest
from dagster_duckdb import DuckDBResource

from regime_platform import training
from regime_platform.defs.features.assets import features
from regime_platform.defs.ingestion.assets import ohlcv
from regime_platform.defs.labels.assets import regime_labels
from regime_platform.defs.modeling.assets import model_assets, no_leakage_checks
from regime_platform.defs.resources import ArtifactIOManager, RegimeSettings, Warehouse

MODELS = {a.key.to_user_string(): a for a in model_assets}
CHECKS = {c.check_specs_by_output_name and next(iter(c.check_keys)).asset_key.to_user_string(): c
          for c in no_leakage_checks}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Prices 2010-2018, features, jump labels: a reduced configuration (two folds, two epochs)."""
    root = tmp_path_factory.mktemp("modeling")
    resources = {
        "warehouse": Warehouse(duckdb=DuckDBResource(database=str(root / "warehouse.duckdb"))),
        "settings": RegimeSettings(data_dir=str(root), source="sample", epochs=2, max_folds=2),
        "artifacts": ArtifactIOManager(base_dir=str(root / "artifacts")),
    }
    tags = {"dagster/asset_partition_range_start": "2010-01-04", "dagster/asset_partition_range_end": "2018-12-31"}
    assert dg.materialize([ohlcv, features], resources=resources, tags=tags).success
    assert dg.materialize([regime_labels], resources=resources).success
    return resources, root


@pytest.mark.parametrize("name", ["lstm_model", "random_forest_model", "persistence_model"])
def test_model_asset_writes_oos_rows_artifacts_and_passes_no_leakage(trained, name):
    resources, root = trained
    result = dg.materialize([MODELS[name], CHECKS[name]], resources=resources,
                            selection=[MODELS[name].key])
    assert result.success
    check = result.get_asset_check_evaluations()[0]
    assert check.passed, check.metadata["problems"].value
    meta = result.asset_materializations_for_node(name)[0].metadata
    assert meta["folds"].value == 2 and meta["oos_predictions"].value > 400
    model = name.removesuffix("_model")
    rows = resources["warehouse"].read("SELECT * FROM market.oos_predictions WHERE model = ?", [model])
    assert rows.height == meta["oos_predictions"].value
    assert sorted(rows["fold"].unique().to_list()) == [0, 1]  # yearly folds: 2017 and 2018
    assert rows["as_of"].min().year == 2017 and rows["horizon"].unique().to_list() == [5]
    probs = np.array(rows["probabilities"].to_list())
    assert np.allclose(probs.sum(axis=1), 1.0)
    # the production model round-trips through the IO manager and forecasts the same as before saving
    production = ArtifactIOManager(base_dir=str(root / "artifacts")).load_input(
        dg.build_input_context(asset_key=dg.AssetKey(name)))
    assert isinstance(production, training.ProductionModel)
    assert production.model_version.startswith(f"{model}-") and meta["model_version"].value == production.model_version
    # re-materializing replaces this model's rows, never duplicates them
    assert dg.materialize([MODELS[name]], resources=resources).success
    again = resources["warehouse"].read("SELECT count(*) FROM market.oos_predictions WHERE model = ?", [model])
    assert again.item() == rows.height


def test_no_leakage_fails_on_a_planted_leak(trained):
    resources, root = trained
    assert dg.materialize([MODELS["logistic_model"]], resources=resources).success
    path = root / "artifacts" / "logistic_model" / "folds.json"
    document = json.loads(path.read_text())
    document["folds"][-1]["scaler_fit_end"] = document["folds"][-1]["test_end"]  # the scaler saw the test year
    path.write_text(json.dumps(document))
    result = dg.materialize([CHECKS["logistic_model"]], resources=resources, raise_on_error=False,
                            selection=dg.AssetSelection.checks(CHECKS["logistic_model"]))
    evaluation = result.get_asset_check_evaluations()[0]
    assert not evaluation.passed and "scaler" in evaluation.metadata["problems"].value
