"""Evaluation assets and checks materialized in-process: plots read back from the instance, checks through
the real Dagster path with faults planted in the stored rows."""
from __future__ import annotations

import base64
import datetime as dt
import re
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from regime_platform import storage as wh
from regime_platform.defs.evaluation.assets import (
    backtest,
    model_comparison,
    model_metrics,
    not_collapsed,
    regime_change_timing,
)
from regime_platform.defs.evaluation.checks import beats_baselines, metrics_reproducible
from regime_platform.defs.features.assets import features
from regime_platform.defs.ingestion.assets import ohlcv
from regime_platform.defs.labels.assets import regime_labels
from regime_platform.defs.modeling.assets import model_assets, walk_forward_targets
from regime_platform.modeling.targets_version import scope_for
from regime_platform_tests.conftest import (
    check_ticker,
    load_artifact,
    materialize_ticker,
    platform_resources,
    ticker_instance,
)

EVALUATION = [model_metrics, regime_change_timing, backtest, model_comparison]
CHECKS = [not_collapsed, beats_baselines, metrics_reproducible]
PLOTS = {"model_metrics": ["confusion_matrices", "forecast_vs_truth", "reliability"],
         "regime_change_timing": ["change_timing"], "backtest": ["equity_curves"], "model_comparison": ["comparison"]}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAST = [a for a in model_assets if a.key.to_user_string() in
        ("logistic_model", "random_forest_model", "majority_model", "persistence_model")]


def png_from_markdown(text: str) -> bytes:
    match = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
    assert match, text[:80]
    return base64.b64decode(match.group(1))


# --- a reduced real run: prices 2010-2018, jump labels, two folds, the fast models -----------------------

@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluation")
    resources = platform_resources(root, epochs=2, max_folds=2)
    tags = {"dagster/asset_partition_range_start": "2010-01-04", "dagster/asset_partition_range_end": "2018-12-31"}
    assert dg.materialize([ohlcv, features], resources=resources, tags=tags).success
    assert materialize_ticker([regime_labels], resources).success
    # the fold targets (with each fold's risk-off regime in market.walk_forward_folds) and the fast models
    assert materialize_ticker([walk_forward_targets, *FAST], resources).success
    instance = ticker_instance("SPY")
    result = materialize_ticker(EVALUATION + CHECKS, resources, instance=instance)
    assert result.success
    return resources, root, instance, result


def test_every_plot_is_inline_and_on_disk(evaluated):
    resources, root, instance, _ = evaluated
    for asset, names in PLOTS.items():
        event = instance.get_latest_materialization_event(dg.AssetKey(asset))
        metadata = event.asset_materialization.metadata
        assert metadata["ticker"].value == "SPY" and metadata["targets_version"].value.startswith("jump-h5-")
        for name in names:
            png = png_from_markdown(metadata[name].value)
            assert png.startswith(PNG_SIGNATURE) and len(png) < 150_000, (asset, name, len(png))
            path = metadata[f"{name}_path"].value
            assert path.startswith(str(root / "artifacts" / asset / "SPY")) and open(path, "rb").read(8) == PNG_SIGNATURE


def test_tables_json_and_metadata(evaluated):
    resources, root, instance, _ = evaluated
    stored = resources["warehouse"].read("SELECT * FROM market.model_metrics")
    assert set(stored["model"]) == {"logistic", "random_forest", "majority", "persistence"}
    pooled = stored.filter(pl.col("fold").is_null())
    names = set(pooled["metric"])
    assert {"accuracy", "balanced_accuracy", "macro_f1", "brier", "log_loss", "ece", "transition_recall",
            "transition_count", "recall_0", "precision_1", "f1_0", "support_1", "change_lead_median"} <= names
    assert sorted(stored["fold"].drop_nulls().unique().to_list()) == [0, 1]
    assert {"macro_f1_lo", "macro_f1_hi", "balanced_accuracy_lo", "change_called_share",
            "transition_recall_into_0", "transition_recall_into_1"} <= names
    trades = resources["warehouse"].read("SELECT * FROM market.backtest")
    assert {"buy_and_hold", "sma_200", "vol_target", "jump_signal", "logistic", "persistence"} <= set(trades["strategy"])
    assert trades["start_date"].n_unique() == 1 and trades["end_date"].n_unique() == 1  # same dates for all
    for measure in ("sharpe", "ann_return", "max_drawdown"):  # every strategy's figure inside its interval
        inside = trades.filter(pl.col(f"{measure}_lo").is_not_null())
        assert inside.height == trades.height
        assert ((inside[f"{measure}_lo"] <= inside[measure]) & (inside[measure] <= inside[f"{measure}_hi"])).all()
    versus = resources["warehouse"].read("SELECT * FROM market.baseline_comparison")
    models = {"logistic", "random_forest"}
    references = {"buy_and_hold", "sma_200", "vol_target", "jump_signal", "persistence", "majority"}
    pairs = set(versus.filter(pl.col("metric") == "sharpe").select("model", "baseline").iter_rows())
    assert pairs == {(m, b) for m in models for b in references}  # every model × every baseline and rule
    f1_pairs = set(versus.filter(pl.col("metric") == "macro_f1").select("model", "baseline").iter_rows())
    assert f1_pairs == {(m, b) for m in models for b in ("persistence", "majority")}
    assert (versus["ci_low"] <= versus["ci_high"]).all() and versus["share_below_zero"].is_between(0, 1).all()
    assert trades.filter(pl.col("strategy") == "buy_and_hold")["time_in_market"].item() > 0.99
    timing = resources["warehouse"].read("SELECT * FROM market.regime_change_timing")
    assert timing.height > 0 and set(timing["model"]) >= {"persistence", "logistic"}
    from regime_platform.storage.reports import Report

    document = Report.load(root / "artifacts" / "model_metrics" / "SPY").documents["metrics"]
    assert document["models"]["logistic"]["5"]["pooled"]["macro_f1"] == pytest.approx(
        pooled.filter((pl.col("model") == "logistic") & (pl.col("metric") == "macro_f1"))["value"].item())
    meta = instance.get_latest_materialization_event(dg.AssetKey("model_metrics")).asset_materialization.metadata
    assert "(baseline)" in meta["summary"].value and isinstance(meta["macro_f1_logistic"].value, float)


def test_checks_ran_and_reproducibility_holds(evaluated):
    _, _, _, result = evaluated
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {"not_collapsed", "beats_baselines", "metrics_reproducible"}
    assert evaluations["metrics_reproducible"].passed, evaluations["metrics_reproducible"].metadata["problems"].value


def test_metrics_reproducible_fails_on_a_planted_wrong_metric(evaluated):
    resources, root, instance, _ = evaluated
    warehouse = resources["warehouse"]
    stored = warehouse.read("SELECT * FROM market.model_metrics")
    planted = stored.with_columns(
        pl.when((pl.col("model") == "logistic") & (pl.col("metric") == "macro_f1") & pl.col("fold").is_null())
        .then(pl.col("value") + 0.05).otherwise(pl.col("value")).alias("value"))
    trades = warehouse.read("SELECT * FROM market.backtest")

    def replace(table, frame):
        with warehouse.connect() as con:
            wh.replace_rows(con, table, frame)  # the whole table: one ticker and version here

    try:
        replace("model_metrics", planted)
        replace("backtest", trades.with_columns(
            pl.when(pl.col("strategy") == "sma_200").then(pl.col("switches") + 1).otherwise(pl.col("switches"))
            .alias("switches"),
            pl.when(pl.col("strategy").is_in(["vol_target", "jump_signal"])).then(pl.col("sharpe") + 0.01)
            .otherwise(pl.col("sharpe")).alias("sharpe")))
        result = check_ticker([model_comparison, model_metrics, backtest], [metrics_reproducible], resources,
                              instance=instance)
        evaluation = result.get_asset_check_evaluations()[0]
        problems = evaluation.metadata["problems"].value
        assert not evaluation.passed and "macro_f1 of logistic" in problems and "switches of sma_200" in problems
        assert "sharpe of vol_target" in problems and "sharpe of jump_signal" in problems
    finally:
        replace("model_metrics", stored)
        replace("backtest", trades)


def test_metrics_reproducible_recomputes_the_cash_a_flat_position_earns(evaluated, tmp_path):
    """With a cash rate stored (the macro asset stores the bundled Fama–French RF offline), the backtest's flat part
    earns it and Sharpe is in excess of it; the independent recomputation did neither, so the check failed on every
    fresh `make run`. It now passes there, and fails when the stored cash rate was changed after the backtest."""
    import shutil

    from regime_platform_tests.evaluation.test_cash import stored_rf

    shutil.copytree(evaluated[1], tmp_path / "copy")
    resources = platform_resources(tmp_path / "copy", epochs=2, max_folds=2)
    start, end = dt.date(2009, 10, 1), dt.date(2018, 12, 31)
    with resources["warehouse"].connect() as con:
        wh.write_macro(con, start, end, {"FF_RF": stored_rf(start, end)})
    result = materialize_ticker([backtest], resources)
    assert result.success
    assert "earns the cash rate FF_RF" in result.asset_materializations_for_node("backtest")[0].metadata[
        "cash_rate"].value

    def audited():
        evaluation = check_ticker([model_comparison, model_metrics, backtest], [metrics_reproducible],
                                  resources).get_asset_check_evaluations()[0]
        return evaluation.passed, evaluation.metadata["problems"].value

    passed, problems = audited()
    assert passed, problems
    with resources["warehouse"].connect() as con:  # a later cash rate than the one the backtest earned
        con.execute("UPDATE market.macro SET value = value + 0.5 WHERE series = 'FF_RF'")
    passed, problems = audited()
    assert not passed and "sharpe of logistic" in problems and "ann_return of sma_200" in problems, problems


# --- checks on hand-made forecasts over real prices ---------------------------------------------------------

@pytest.fixture
def synthetic(tmp_path):
    """Sample prices 2016-2018; hand-made forecasts over 2017-2018: truth in blocks, an oracle, the baselines."""
    resources = platform_resources(tmp_path)
    tags = {"dagster/asset_partition_range_start": "2016-01-04", "dagster/asset_partition_range_end": "2018-12-31"}
    assert dg.materialize([ohlcv], resources=resources, tags=tags).success
    dates = [d for d in resources["warehouse"].read("SELECT date FROM market.ohlcv ORDER BY date")["date"]
             if d.year >= 2017]
    h = 5
    n = len(dates) - h
    truth = np.array([(i // 40) % 3 == 2 for i in range(len(dates))], dtype=int)  # 80 sessions of 0, then 40 of 1
    as_of, target = dates[:n], dates[h:]
    true_at_target, known = truth[h:], truth[:n]
    fold = [0 if d.year == 2017 else 1 for d in as_of]

    def rows(model, predicted):
        probs = [[0.9, 0.1] if p == 0 else [0.1, 0.9] for p in predicted]
        return pl.DataFrame({"model": model, "fold": fold, "as_of": as_of, "target_date": target, "horizon": h,
                             "predicted_regime": np.asarray(predicted, dtype=np.int32), "probabilities": probs,
                             "true_regime": true_at_target.astype(np.int32), "known_regime": known.astype(np.int32)})

    scope = scope_for(resources["settings"].settings(), "SPY").key  # the version the evaluation reads

    def store(extra: dict[str, np.ndarray]):
        frames = [rows("oracle", true_at_target), rows("majority", np.zeros(n, int)), rows("persistence", known)]
        frames += [rows(m, p) for m, p in extra.items()]
        with resources["warehouse"].connect() as con:
            wh.replace_scoped(con, "oos_predictions", pl.concat(frames), scope)
            wh.replace_scoped(con, "walk_forward_folds", pl.DataFrame({
                "labeler": "synthetic", "horizon": h, "fold": [0, 1], "risk_off_regime": [1, 1]}), scope)

    return resources, store, n


def run_check(resources, check, assets=(model_metrics, backtest, regime_change_timing, model_comparison)):
    result = materialize_ticker([*assets, check], resources, raise_on_error=False)
    assert result.success
    return result.get_asset_check_evaluations()[0]


def test_not_collapsed_is_quiet_on_a_good_model_and_fires_on_a_constant_one(synthetic):
    resources, store, n = synthetic
    store({})
    quiet = run_check(resources, not_collapsed, [model_metrics])
    assert quiet.passed, quiet.description
    store({"constant": np.zeros(n, int)})
    fired = run_check(resources, not_collapsed, [model_metrics])
    assert not fired.passed and fired.severity == dg.AssetCheckSeverity.ERROR
    assert "constant" in fired.description and "oracle" not in fired.description


def test_beats_baselines_fails_on_a_noisy_copy_of_buy_and_hold(synthetic):
    resources, store, n = synthetic
    rng = np.random.default_rng(7)
    store({"noisy_hold": (rng.random(n) < 0.05).astype(int)})  # long except on 5 % of random days
    # the oracle is flat in regime 1 five sessions ahead: drop it so the noisy copy is the best model
    scope = scope_for(resources["settings"].settings(), "SPY")
    with resources["warehouse"].connect() as con:
        kept = wh.walk_forward_predictions(con, "SPY", scope.targets_version).filter(pl.col("model") != "oracle")
        wh.replace_scoped(con, "oos_predictions", kept, scope.key)
    failed = run_check(resources, beats_baselines)
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.WARN
    said = re.search(r"noisy_hold is (ahead of|behind) buy_and_hold on Sharpe by [+−][0-9.]+ \[[+−][0-9.]+, "
                     r"[+−][0-9.]+\](: not distinguishable at 90 %)?\.", failed.description)
    assert said, failed.description  # one sentence per reference, each with its paired interval
    assert "The best of 1 models by Sharpe is noisy_hold" in failed.description
    assert "Hansen's SPA" in failed.description


def test_beats_baselines_says_how_far_the_sequence_models_are_from_the_best_tabular_model():
    from regime_platform.evaluation import comparison

    table = pl.DataFrame({"name": ["logistic", "random_forest", "lstm", "cnn", "majority", "buy_and_hold"],
                          "kind": ["model", "model", "model", "model", "baseline", "rule"],
                          "macro_f1": [0.7, 0.65, 0.6, 0.75, 0.4, None],
                          "balanced_accuracy": [0.7, 0.6, 0.6, 0.5, 0.5, None],
                          "sharpe": [1.2, 1.0, 0.3, 0.2, None, 0.8], "max_drawdown": [-0.1, -0.1, -0.2, -0.2, None, -0.3],
                          "change_lead_median": [1.0, 2.0, 2.0, 3.0, None, None]})
    assert comparison.deep_models_sentence(table) == (
        "Sequence models against the tabular ones: on Sharpe the best tabular model is logistic (1.20): the LSTM "
        "trails it by 0.90 (0.30), the CNN trails it by 1.00 (0.20); on macro-F1 the best tabular model is logistic "
        "(0.700): the LSTM trails it by 0.100 (0.600), the CNN reaches it (0.750, +0.050).")


def test_the_verdict_passes_only_on_intervals_above_zero():
    from regime_platform.evaluation import comparison

    table = pl.DataFrame({"name": ["logistic", "buy_and_hold"], "kind": ["model", "rule"], "macro_f1": [0.7, None],
                          "balanced_accuracy": [0.7, None], "sharpe": [0.9, 0.5], "max_drawdown": [-0.1, -0.3],
                          "change_lead_median": [1.0, None]})

    def versus(low):
        return pl.DataFrame({"model": "logistic", "baseline": ["buy_and_hold", "persistence"], "horizon": 5,
                             "metric": ["sharpe", "macro_f1"], "difference": [0.4, 0.05], "ci_low": [low, 0.01],
                             "ci_high": [0.8, 0.09], "share_below_zero": [0.0, 0.0]})

    passed, sentences = comparison.verdict(table, versus(0.1))
    assert passed and "logistic is ahead of buy_and_hold on Sharpe by +0.40 [+0.10, +0.80]." in sentences
    passed, sentences = comparison.verdict(table, versus(-0.2))
    assert not passed and ("logistic is ahead of buy_and_hold on Sharpe by +0.40 [−0.20, +0.80]: not "
                           "distinguishable at 90 %.") in sentences


def test_backtest_run_config_sets_cost_and_risk_off_and_the_audit_follows(synthetic):
    resources, store, n = synthetic
    store({})
    run_config = {"ops": {"backtest": {"config": {"cost_bp": 0.0, "risk_off_regime": 0}}}}
    result = materialize_ticker([model_metrics, backtest, model_comparison, metrics_reproducible], resources,
                                run_config=run_config)
    assert result.success
    assert result.get_asset_check_evaluations()[0].passed  # the recomputation read the same cost and regime
    trades = resources["warehouse"].read("SELECT * FROM market.backtest")
    oracle = trades.filter(pl.col("strategy") == "oracle").row(0, named=True)
    # flat whenever the oracle forecasts regime 0 (two thirds of the blocks), long in regime 1
    assert 0.25 < oracle["time_in_market"] < 0.4
    from regime_platform.storage.reports import Report

    loaded = load_artifact(Path(resources["artifacts"].base_dir).parent, "backtest")
    assert isinstance(loaded, Report) and loaded.documents["backtest"]["cost_bp"] == 0.0
    assert loaded.figures["equity_curves"].startswith(PNG_SIGNATURE)


def test_backtest_says_what_to_do_without_a_risk_off_regime(synthetic):
    resources, store, n = synthetic
    store({})
    with resources["warehouse"].connect() as con:
        con.execute("DELETE FROM market.walk_forward_folds")
    result = materialize_ticker([backtest], resources, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.cause.message
    assert "market.walk_forward_folds" in failure and "risk_off_regime" in failure


@pytest.mark.parametrize("regime", [2, -1])
def test_a_risk_off_regime_that_does_not_exist_fails_in_one_sentence_and_stores_nothing(synthetic, regime):
    """Before the check, a risk-off regime no model forecasts made every model buy-and-hold, silently."""
    resources, store, n = synthetic
    store({})
    run_config = {"ops": {"backtest": {"config": {"risk_off_regime": regime}}}}
    result = materialize_ticker([backtest], resources, raise_on_error=False, run_config=run_config)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.cause.message
    assert failure.startswith(f"ValueError: the backtest's run config risk_off_regime={regime} is not a regime of "
                              "SPY"), failure
    assert "whose forecasts have regimes 0 … 1; set one of those" in failure
    assert resources["warehouse"].read("SELECT count(*) AS n FROM market.backtest")["n"][0] == 0


def test_evaluation_never_pools_two_labelers(evaluated):
    """Switching REGIME_LABELER and re-materializing the labels, the targets and one model leaves the other models'
    rows under the old targets version: evaluation refuses in one sentence naming them, and with the old settings
    back evaluates the old version alone (runs last: it changes the module's stored labels)."""
    resources, root, instance, _ = evaluated
    hmm = {**resources, "settings": type(resources["settings"])(
        data_dir=resources["settings"].data_dir, source="sample", epochs=2, max_folds=2, labeler="hmm")}
    majority = [a for a in FAST if a.key.to_user_string() == "majority_model"]
    assert materialize_ticker([regime_labels, walk_forward_targets, *majority], hmm).success
    versions = resources["warehouse"].read("SELECT DISTINCT model, targets_version FROM market.oos_predictions")
    assert versions.filter(pl.col("model") == "majority").height == 2  # both versions kept, never mixed
    result = materialize_ticker([model_metrics], hmm, raise_on_error=False)
    assert not result.success
    message = result.get_step_failure_events()[0].event_specific_data.error.cause.message
    current = scope_for(hmm["settings"].settings(), "SPY").targets_version
    assert ("logistic, persistence, random_forest have out-of-sample rows of SPY only for targets version(s) "
            "jump-h5-") in message, message
    assert (f"not the current {current}, so evaluation refuses to pool them with majority: re-materialize "
            "logistic_model, persistence_model, random_forest_model for SPY.") in message
    again = materialize_ticker([model_metrics], resources)  # the old settings: the jump version, whole
    assert again.success
    stored = resources["warehouse"].read("SELECT DISTINCT targets_version FROM market.model_metrics")
    assert stored["targets_version"].to_list() == [scope_for(resources["settings"].settings(), "SPY").targets_version]
