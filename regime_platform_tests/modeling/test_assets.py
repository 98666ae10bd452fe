"""Model assets materialized in-process on the sample: walk-forward rows, production artifacts, no_leakage."""
from __future__ import annotations

from dataclasses import replace

import dagster as dg
import numpy as np
import polars as pl
import pytest

from regime_platform import storage as wh
from regime_platform.defs.features.assets import features
from regime_platform.defs.ingestion.assets import ohlcv
from regime_platform.defs.labels.assets import regime_labels
from regime_platform.defs.modeling.assets import model_assets, no_leakage_checks, walk_forward_targets
from regime_platform.modeling import fold_records, folds, training
from regime_platform.modeling import production as production_module
from regime_platform.modeling import walk_forward as walk_forward_module
from regime_platform.modeling.scaling import SessionScaler
from regime_platform.modeling.targets import RefitLabels
from regime_platform.modeling.targets_version import scope_for
from regime_platform_tests.conftest import check_ticker, load_artifact, materialize_ticker, platform_resources

MODELS = {a.key.to_user_string(): a for a in model_assets}
CHECKS = {c.check_specs_by_output_name and next(iter(c.check_keys)).asset_key.to_user_string(): c
          for c in no_leakage_checks}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Prices 2010-2018, features, jump labels: a reduced configuration (two folds, two epochs)."""
    root = tmp_path_factory.mktemp("modeling")
    resources = platform_resources(root, epochs=2, max_folds=2)
    tags = {"dagster/asset_partition_range_start": "2010-01-04", "dagster/asset_partition_range_end": "2018-12-31"}
    assert dg.materialize([ohlcv, features], resources=resources, tags=tags).success
    assert materialize_ticker([regime_labels, walk_forward_targets], resources).success
    return resources, root


def load_production(root, name):
    """The SPY production model as a downstream per-ticker asset loads it through the artifact IO manager."""
    return load_artifact(root, name)


def targets_version(resources) -> str:
    return scope_for(resources["settings"].settings(), "SPY").targets_version


def stored_records(resources, name) -> list[dict]:
    """The SPY fold records of model asset ``name`` that no_leakage verifies (market.fold_records)."""
    with resources["warehouse"].connect() as con:
        rows = wh.read_fold_records(con, "SPY", targets_version(resources), name.removesuffix("_model"))
    return fold_records.records_from_rows(rows)[0]


@pytest.mark.parametrize("name", ["lstm_model", "random_forest_model", "ensemble_model", "persistence_model"])
def test_model_asset_writes_oos_rows_artifacts_and_passes_no_leakage(trained, name):
    resources, root = trained
    result = materialize_ticker([MODELS[name], CHECKS[name]], resources, selection=[MODELS[name].key])
    assert result.success
    check = result.get_asset_check_evaluations()[0]
    assert check.passed, check.metadata["problems"].value
    assert check.metadata["known_regime_dates_recomputed"].value >= 4  # first and last fold, changes and last day
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
    production = load_production(root, name)
    assert isinstance(production, production_module.ProductionModel)
    assert (production.ticker, production.targets_version) == ("SPY", meta["targets_version"].value)
    assert production.model_version.startswith(f"{model}-") and meta["model_version"].value == production.model_version
    # every fold and the production fit say how many samples the model was fit on: all the training span
    records = stored_records(resources, name)
    assert len(records) == 2
    for rec in records:
        assert rec["models"][model]["n_fit"] == rec["n_train"] == sum(rec["class_counts"].values())
        assert rec["training_settings"] == {"class_weighting": True, "oversampling": "none", "seed": 0}
        assert rec["labeler"] == "jump" and sorted(rec["state_mapping"]) == ["0", "1"]
        assert rec["risk_off_regime"] in (0, 1)
    assert production.model.fit_info["n_fit"] == meta["production_fit_samples"].value
    assert production.state_mapping and production.config["seed"] == 0
    # re-materializing replaces this model's rows, never duplicates them
    assert materialize_ticker([MODELS[name]], resources).success
    again = resources["warehouse"].read("SELECT count(*) FROM market.oos_predictions WHERE model = ?", [model])
    assert again.item() == rows.height


def _materialize_with_check(resources, name):
    """The fold targets and the model as one run (as `make run` does), then its leakage check."""
    return materialize_ticker([walk_forward_targets, MODELS[name], CHECKS[name]], resources, raise_on_error=False)


def _problems(result):
    evaluation = result.get_asset_check_evaluations()[0]
    return evaluation.passed, evaluation.metadata["problems"].value


class LeakyScaler(SessionScaler):
    """The classic leak: the scaler fit on every session, test years included."""

    def fit(self, X, train_t, window, **kwargs):
        return super().fit(X, np.arange(window - 1, len(X)), window, **kwargs)


def tail_without_embargo(train_t, fraction=0.15, gap=None, **kwargs):
    """The early-stopping tail as the real code carves it, but the part fit before it runs right up to it."""
    fit_t, val_t = folds.validation_tail(train_t, fraction, gap, **kwargs)
    return (train_t[train_t < val_t[0]] if val_t.size else fit_t), val_t


def hindsight_as_known(labels):
    """A fold's labels with its smoothed hindsight path (it sees the days after t) stored as the regime known at t."""
    return replace(labels, known_regime=labels.test_regime)


def over_the_whole_span(span):
    """The span with its 'tail' widened to every training sample: a step that should read the tail reads them all."""
    return replace(span, val_t=span.train_t, y_val=span.y_train)


@pytest.mark.parametrize("leak", ["scaler fit on all rows", "labeler refit on the test year",
                                  "embargo one session short", "validation tail without an embargo",
                                  "temperature fit on the training rows", "known_regime from the hindsight labels"])
def test_no_leakage_fails_on_a_real_leak_in_the_training_code(trained, monkeypatch, leak):
    """Each leak is injected into the real training code; the model asset runs and no_leakage must fail."""
    resources, root = trained
    if leak == "scaler fit on all rows":
        monkeypatch.setattr("regime_platform.modeling.training.SessionScaler", LeakyScaler)
        needle = "scaler fit to"
    elif leak == "labeler refit on the test year":
        honest = RefitLabels.fold_labels
        monkeypatch.setattr(RefitLabels, "fold_labels",
                            lambda self, train_end, test_end=None: honest(self, test_end or train_end, test_end))
        needle = "labeler fit to"
    elif leak == "embargo one session short":
        honest_bound = folds.embargo_last_train_t
        monkeypatch.setattr(folds, "embargo_last_train_t", lambda T, w, h: honest_bound(T, w, h) + 1)
        needle = "embargo too short"
    elif leak == "validation tail without an embargo":
        monkeypatch.setattr("regime_platform.modeling.training.validation_tail", tail_without_embargo)
        needle = "validation tail embargo too short"
    elif leak == "known_regime from the hindsight labels":
        honest = RefitLabels.fold_labels
        monkeypatch.setattr(RefitLabels, "fold_labels", lambda self, train_end, test_end=None: hindsight_as_known(
            honest(self, train_end, test_end)))
        needle = "run online through that date only"
    else:
        honest_calibration = training.calibrate_on_tail
        monkeypatch.setattr(training, "calibrate_on_tail", lambda name, mparams, span, probe, *rest: honest_calibration(
            name, mparams, over_the_whole_span(span), probe, *rest))
        needle = "logistic's calibration read samples"
    passed, problems = _problems(_materialize_with_check(resources, "logistic_model"))
    assert not passed and needle in problems, problems
    monkeypatch.undo()
    passed, problems = _problems(_materialize_with_check(resources, "logistic_model"))
    assert passed, problems


def test_no_leakage_fails_when_feature_selection_reads_past_the_tail(trained, monkeypatch):
    """REGIME_FEATURE_SELECTION=1 through the logistic asset: the choice reads the training span's tail only and
    no_leakage passes; planted to read the whole training span (as it once did), no_leakage fails."""
    resources, root = trained
    selecting = {**resources, "settings": type(resources["settings"])(
        data_dir=resources["settings"].data_dir, source="sample", epochs=2, max_folds=2, feature_selection=True)}
    passed, problems = _problems(_materialize_with_check(selecting, "logistic_model"))
    assert passed, problems
    reads = [rec["feature_selection"] | {"tail": (rec["validation_start"], rec["validation_end"], rec["n_validation"]),
                                         "features": rec["features"]}
             for rec in stored_records(selecting, "logistic_model")]
    for read in reads:
        assert read["selected"] == read["features"]
        if read["n_rows"]:  # the samples it read are exactly the fold's validation tail …
            assert (read["rows_start"], read["rows_end"], read["n_rows"]) == read["tail"]
        else:  # … or none, when the tail's targets hold one regime: every candidate kept
            assert "hold regime" in read["note"] and "every candidate kept" in read["note"]
    assert any(read["n_rows"] for read in reads)  # else the planted fault below could not show
    honest_selection = walk_forward_module.select_span_features
    monkeypatch.setattr(walk_forward_module, "select_span_features", lambda samples, span, *args: honest_selection(
        samples, over_the_whole_span(span), *args))
    passed, problems = _problems(_materialize_with_check(selecting, "logistic_model"))
    assert not passed and "feature selection read samples" in problems, problems
    monkeypatch.undo()
    assert materialize_ticker([MODELS["logistic_model"]], resources).success  # back to the default settings


def test_no_leakage_fails_in_one_sentence_on_missing_records_and_foreign_rows(trained):
    resources, root = trained
    assert _materialize_with_check(resources, "majority_model").success
    # rows of another horizon than any record covers, written as if by another run
    with resources["warehouse"].connect() as con:
        con.execute("INSERT INTO market.oos_predictions SELECT ticker, targets_version, model, fold, as_of, target_date, "
                    "21, predicted_regime, probabilities, true_regime, known_regime FROM market.oos_predictions "
                    "WHERE model = 'majority' LIMIT 3")
    result = check_ticker([MODELS["majority_model"]], [CHECKS["majority_model"]], resources)
    passed, problems = _problems(result)
    assert not passed and "3 stored rows of horizon 21, fold" in problems and "have no fold record" in problems
    assert "are not the rows its fold records in market.fold_records were stored with" in problems
    assert "another writer changed them since; re-materialize majority_model for SPY" in problems
    with resources["warehouse"].connect() as con:
        con.execute("DELETE FROM market.oos_predictions WHERE model = 'majority' AND horizon = 21")
    passed, problems = _problems(check_ticker([MODELS["majority_model"]], [CHECKS["majority_model"]], resources))
    assert passed, problems  # the rows are the records' again
    with resources["warehouse"].connect() as con:
        con.execute("DELETE FROM market.fold_records WHERE model = 'majority'")
    passed, problems = _problems(check_ticker([MODELS["majority_model"]], [CHECKS["majority_model"]], resources))
    assert not passed and problems == (f"- market.fold_records holds no fold records of majority for SPY, targets "
                                       f"{targets_version(resources)}: materialize majority_model for SPY")


def test_fold_targets_are_computed_once_and_shared(trained):
    """Every model reads the same stored fold labels; the table says each fold's labeler fit range and risk-off."""
    resources, root = trained
    folds_table = resources["warehouse"].read("SELECT * FROM market.walk_forward_folds ORDER BY fold")
    assert folds_table["fold"].to_list() == [-1, 0, 1]  # the production labels, then the two reduced-config folds
    real = folds_table.filter(pl.col("fold") >= 0)
    assert (real["labeler_fit_end"] == real["train_target_end"]).all()
    assert real["risk_off_regime"].is_in([0, 1]).all() and real["state_mapping"].str.contains('"0"').all()
    stored_labels = resources["warehouse"].read("SELECT * FROM market.regime_labels ORDER BY date")
    production = resources["warehouse"].read("SELECT * FROM market.fold_labels WHERE fold = -1 ORDER BY date")
    assert production["train_regime"].to_list() == stored_labels["regime"].to_list()
    # a model asset whose settings ask for targets that were not computed (another horizon) says what to do
    stale = {**resources, "settings": type(resources["settings"])(
        data_dir=resources["settings"].data_dir, source="sample", epochs=2, max_folds=2, horizon=21)}
    result = materialize_ticker([MODELS["majority_model"]], stale, raise_on_error=False)
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    failure = error.message + "".join(c.message for c in [error.cause] if c)
    assert "market.walk_forward_folds has no targets of version jump-h21-" in failure
    assert "for SPY (the current settings): materialize walk_forward_targets for SPY first." in failure


def test_the_production_fit_honours_the_sharpe_inner_score_like_the_folds(trained):
    """REGIME_INNER_SCORE=sharpe through the model asset: the folds and the production model (the one the daily ledger
    uses) both choose capacity and dwell by the tail's Sharpe — the asset hands the production fit the returns."""
    resources, root = trained
    sharpe = {**resources, "settings": type(resources["settings"])(
        data_dir=resources["settings"].data_dir, source="sample", epochs=2, max_folds=2, inner_score="sharpe")}
    assert materialize_ticker([MODELS["logistic_model"]], sharpe).success
    records = stored_records(sharpe, "logistic_model")
    assert {rec["models"]["logistic"]["inner_validation"]["scored_by"] for rec in records} == {"sharpe"}
    final = load_production(root, "logistic_model")
    inner = final.config["inner_validation"]
    assert final.config["inner_score"] == "sharpe" and inner["scored_by"] == "sharpe", inner
    assert inner["n_validation"] > 0 and inner["candidates"]
    assert materialize_ticker([MODELS["logistic_model"]], resources).success  # back to the default settings
