"""The ledger forecasts with models fit on macro inputs (REGIME_MACRO=auto): through the real assets, the macro features
it computes for a session equal those of the model's fit (computed over the whole history), it reads only the
market.macro rows usable at that session, and a value it needs that is missing stops the forecast with a sentence.

Models are fit on the bundled sample 2015-06-01 … 2018-12-14 (a reduced configuration); the daily job's assets then
run for the session 2018-12-17."""
from __future__ import annotations

import datetime as dt
import shutil

import dagster as dg
import numpy as np
import pytest

from regime_platform import labels
from regime_platform import storage as wh
from regime_platform.defs.features.assets import features
from regime_platform.defs.forecasting.assets import regime_forecasts
from regime_platform.defs.ingestion.assets import ohlcv
from regime_platform.defs.ingestion.macro import macro
from regime_platform.defs.labels.assets import regime_labels
from regime_platform.defs.modeling.assets import model_assets, walk_forward_targets
from regime_platform.defs.resources import ArtifactIOManager, artifact_directory
from regime_platform.features import macro as macro_inputs
from regime_platform_tests.conftest import materialize_ticker, platform_resources, ticker_instance

DAY = dt.date(2018, 12, 17)


def forecast(resources, raise_on_error: bool = True):
    return dg.materialize([*model_assets, regime_forecasts], selection=[regime_forecasts.key],
                          partition_key=DAY.isoformat(), resources=resources, raise_on_error=raise_on_error,
                          instance=ticker_instance("SPY"))


def ledger_row(resources, model: str) -> dict:
    return resources["warehouse"].read("SELECT * FROM market.regime_forecasts WHERE model = ? AND as_of = ?",
                                       [model, DAY]).to_dicts()[0]


@pytest.fixture(scope="module")
def macro_ledger(tmp_path_factory):
    root = tmp_path_factory.mktemp("macro_ledger")
    resources = platform_resources(root, epochs=2, max_folds=2, macro="auto", inner_validation=False)
    tags = {"dagster/asset_partition_range_start": "2015-06-01", "dagster/asset_partition_range_end": "2018-12-14"}
    assert dg.materialize([ohlcv, macro, features], resources=resources, tags=tags).success
    assert materialize_ticker([regime_labels, walk_forward_targets, *model_assets], resources).success
    assert dg.materialize([ohlcv, macro, features], partition_key=DAY.isoformat(), resources=resources).success
    assert forecast(resources).success
    return resources, root


def test_the_ledger_computes_a_macro_models_inputs_as_its_fit_did(macro_ledger):
    resources, _ = macro_ledger
    model = ArtifactIOManager._load(artifact_directory(resources["settings"], "logistic_model", "SPY"))
    used = [f for f in model.feature_names if f in macro_inputs.MACRO_FEATURES]
    assert "macro_credit_spread" in used
    with resources["warehouse"].connect() as con:  # the whole stored history, as the fit computed its inputs
        history = wh.read_features(con, "SPY")
        rows = wh.read_macro(con, macro_inputs.MACRO_SERIES)
        frame = wh.read_labeler_frame(con, "SPY")
    history = macro_inputs.with_macro(history.filter(history["date"] <= DAY), rows, used)
    X = history.tail(model.window).select(model.feature_names).to_numpy().astype(np.float64)
    s = resources["settings"].settings()
    known = labels.known_regime_at(frame, s.user_labels_path("SPY"), s.labeler, s.label_lag, DAY)
    expected = model.forecast_last(X, known.regime)
    assert np.allclose(ledger_row(resources, "logistic")["probabilities"], expected, atol=1e-12)


def test_only_macro_rows_usable_at_the_session_move_its_forecast(macro_ledger, tmp_path):
    resources, root = macro_ledger
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    planted = platform_resources(copy, epochs=2, max_folds=2, macro="auto", inner_validation=False)
    before = ledger_row(planted, "logistic")["probabilities"]
    with planted["warehouse"].connect() as con:  # a later publication (usable after DAY) changes nothing at DAY
        con.execute("UPDATE market.macro SET value = value + 5 WHERE series = 'BAA' AND usable_from > ?", [DAY])
    assert forecast(planted).success
    assert ledger_row(planted, "logistic")["probabilities"] == before
    with planted["warehouse"].connect() as con:  # the Baa yield usable at DAY does
        con.execute("UPDATE market.macro SET value = value + 5 WHERE series = 'BAA' AND usable_from <= ?", [DAY])
    assert forecast(planted).success
    assert not np.allclose(ledger_row(planted, "logistic")["probabilities"], before)
    with planted["warehouse"].connect() as con:  # no Aaa yield usable for months: the feature is missing, said
        con.execute("DELETE FROM market.macro WHERE series = 'AAA' AND usable_from > ?", [DAY - dt.timedelta(days=150)])
    failed = forecast(planted, raise_on_error=False)
    assert not failed.success
    text = " ".join(e.step_failure_data.error.to_string() for e in failed.all_events if e.is_step_failure)
    assert "macro_credit_spread" in text and "materialize macro" in text
