"""REGIME_MACRO=auto through the real assets: the macro features that cover the span join the model inputs, the fold
records list them, and no_leakage fails on a look-ahead planted in market.macro."""
from __future__ import annotations

import dataclasses

import dagster as dg
import pytest

from regime_platform import storage as wh
from regime_platform.defs.features.assets import features
from regime_platform.defs.ingestion.assets import ohlcv
from regime_platform.defs.ingestion.macro import macro
from regime_platform.defs.labels.assets import regime_labels
from regime_platform.defs.modeling.assets import model_assets, no_leakage_checks, walk_forward_targets
from regime_platform.modeling import fold_records
from regime_platform.modeling.targets_version import scope_for
from regime_platform_tests.conftest import check_ticker, materialize_ticker, platform_resources

MODEL = next(a for a in model_assets if a.key.to_user_string() == "logistic_model")
CHECK = next(c for c in no_leakage_checks if next(iter(c.check_keys)).asset_key == MODEL.key)


@pytest.fixture(scope="module")
def macro_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("macro_inputs")
    resources = platform_resources(root, epochs=2, max_folds=2, macro="auto", inner_validation=False)
    tags = {"dagster/asset_partition_range_start": "2015-06-01", "dagster/asset_partition_range_end": "2018-12-31"}
    assert dg.materialize([ohlcv, macro, features], resources=resources, tags=tags).success
    targets = materialize_ticker([regime_labels, walk_forward_targets], resources)
    assert targets.success
    return resources, root, targets.asset_materializations_for_node("walk_forward_targets")[0].metadata


def test_the_covering_macro_features_are_model_inputs_and_the_rest_said(macro_run):
    resources, root, meta = macro_run
    used = meta["features"].value.split(", ")
    assert "macro_credit_spread" in used and "macro_credit_spread_chg_63" in used
    assert "macro_term_spread" not in used  # the bundle has no T10Y2Y: left out, in a sentence
    assert "macro_term_spread is left out" in meta["macro_inputs"].value and "T10Y2Y" in meta["macro_inputs"].value
    off = scope_for(dataclasses.replace(resources["settings"].settings(), macro="off"), "SPY").targets_version
    assert meta["targets_version"].value != off  # macro inputs are another recipe, never pooled with prices only
    result = materialize_ticker([MODEL, CHECK], resources, selection=[MODEL.key])
    assert result.success
    check = result.get_asset_check_evaluations()[0]
    assert check.passed, check.metadata["problems"].value
    with resources["warehouse"].connect() as con:
        rows = wh.read_fold_records(con, "SPY", meta["targets_version"].value, "logistic")
    records = fold_records.records_from_rows(rows)[0]
    assert records
    for record in records:
        assert "macro_credit_spread" in record["features"]


def test_no_leakage_fails_on_a_look_ahead_planted_in_market_macro(macro_run):
    resources, _, _ = macro_run
    assert materialize_ticker([MODEL, CHECK], resources, selection=[MODEL.key]).success
    with resources["warehouse"].connect() as con:  # Moody's monthly averages usable on the month's first day
        con.execute("UPDATE market.macro SET usable_from = date WHERE series IN ('BAA', 'AAA')")
    result = check_ticker([MODEL], [CHECK], resources)
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed
    problems = check.metadata["problems"].value
    assert "look-ahead" in problems and "macro_credit_spread" in problems
