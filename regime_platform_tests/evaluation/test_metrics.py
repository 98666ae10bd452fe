"""Metrics on small hand-computed cases."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from regime_platform.evaluation import metrics


def oos_frame(model, true, pred, probs, known, folds=None, horizon=5):
    n = len(true)
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    made = [d - dt.timedelta(days=1) for d in dates]  # each row made on the previous row's target session
    return pl.DataFrame({
        "model": [model] * n, "fold": folds or [0] * n, "as_of": made, "target_date": dates,
        "horizon": [horizon] * n, "predicted_regime": pred, "probabilities": probs,
        "true_regime": true, "known_regime": known,
    }, schema_overrides={"probabilities": pl.List(pl.Float64)})


def test_hand_computed_binary_case():
    # truth 0 0 0 1 1, forecasts 0 0 1 1 0: accuracy 3/5; recall_0 = 2/3, recall_1 = 1/2
    true = np.array([0, 0, 0, 1, 1])
    pred = np.array([0, 0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.5, 0.5]])
    prior = np.array([0, 0, 0, 0, 1])  # row 3 (truth 1, the truth at its forecast date 0) is the one change
    m = metrics.classification_metrics(true, pred, probs, prior, 2)
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["recall_0"] == pytest.approx(2 / 3) and m["recall_1"] == pytest.approx(0.5)
    assert m["precision_0"] == pytest.approx(2 / 3) and m["precision_1"] == pytest.approx(0.5)
    f1_0 = 2 * (2 / 3) * (2 / 3) / (4 / 3)
    assert m["f1_0"] == pytest.approx(f1_0) and m["macro_f1"] == pytest.approx((f1_0 + 0.5) / 2)
    assert m["support_0"] == 3 and m["support_1"] == 2
    # binary Brier: mean of (p1 - y)^2
    p1 = probs[:, 1]
    assert m["brier"] == pytest.approx(np.mean((p1 - true) ** 2))
    assert m["log_loss"] == pytest.approx(-np.mean(np.log(probs[np.arange(5), true])))
    assert m["transition_count"] == 1 and m["transition_recall"] == 1.0
    assert m["transition_recall_into_1"] == 1.0 and math.isnan(m["transition_recall_into_0"])


def test_expected_calibration_error_by_hand():
    # two bins used: confidence 0.9 (2 rows, 1 right) and 0.6 (2 rows, both right)
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    y = np.array([0, 1, 0, 1])
    assert metrics.expected_calibration_error(y, probs) == pytest.approx(0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6))


def test_persistence_scores_zero_on_transitions_and_no_transitions_is_null():
    known = [0, 0, 1, 1]
    table = metrics.metrics_table(oos_frame("persistence", [0, 1, 1, 1], known,
                                            [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], known))
    pooled = {r["metric"]: r["value"] for r in table.filter(pl.col("fold").is_null()).iter_rows(named=True)}
    assert pooled["transition_count"] == 1 and pooled["transition_recall"] == 0.0
    steady = metrics.metrics_table(oos_frame("m", [0, 0], [0, 0], [[1.0, 0.0], [1.0, 0.0]], [0, 0]))
    value = steady.filter(pl.col("metric") == "transition_recall")["value"]
    assert value.is_null().all()


def test_long_table_has_folds_pooled_and_change_lead():
    frame = oos_frame("logistic", [0, 1, 0, 1], [0, 1, 1, 1], [[0.8, 0.2], [0.1, 0.9], [0.4, 0.6], [0.3, 0.7]],
                      [0, 0, 1, 0], folds=[0, 0, 1, 1])
    table = metrics.metrics_table(frame, {("logistic", 5): {"change_lead_median": -2.0, "change_called_share": 0.5}})
    assert table.columns == metrics.METRIC_COLUMNS
    assert sorted(table["fold"].unique().to_list(), key=lambda f: -1 if f is None else f) == [None, 0, 1]
    acc = {r["fold"]: r["value"] for r in table.filter(pl.col("metric") == "accuracy").iter_rows(named=True)}
    assert acc == {None: 0.75, 0: 1.0, 1: 0.5}
    assert table.filter(pl.col("metric") == "change_lead_median")["value"].to_list() == [-2.0]
    summary = metrics.pooled_summary(table, 5)
    assert summary["model"].to_list() == ["logistic"] and summary["baseline"].to_list() == [False]


def test_rows_without_truth_are_ignored_and_empty_input_is_refused():
    frame = oos_frame("m", [0, None], [0, 1], [[1.0, 0.0], [0.0, 1.0]], [0, 0])
    acc = metrics.metrics_table(frame).filter(pl.col("metric") == "accuracy", pl.col("fold").is_null())
    assert acc["value"].item() == 1.0
    with pytest.raises(ValueError, match="materialize the model assets"):
        metrics.metrics_table(frame.filter(pl.col("true_regime").is_null()))


def test_collapse_findings_thresholds():
    n = 100
    const = oos_frame("constant", [0] * 80 + [1] * 20, [0] * n, [[1.0, 0.0]] * n, [0] * n)
    mostly = oos_frame("mostly", [0] * 50 + [1] * 50, [0] * 92 + [1] * 8, [[1.0, 0.0]] * n, [0] * n)
    honest = oos_frame("honest", [0] * 93 + [1] * 7, [0] * 92 + [1] * 8, [[1.0, 0.0]] * n, [0] * n)
    found = metrics.collapse_findings(pl.concat([const, mostly, honest]))
    verdicts = dict(zip(found["model"], found["verdict"]))
    assert verdicts == {"constant": "ERROR", "mostly": "WARN", "honest": "OK"}
    assert math.isclose(found.filter(pl.col("model") == "mostly")["forecast_share"].item(), 0.92)


def test_collapse_is_judged_against_the_truth():
    """The drawdown-label failure: a model forecasting bull 97 % of the time when the truth holds it 89 % warns;
    one that tracks the same truth (90 %) stays quiet. The old rule (share ≥ 1.2 × true share) missed the first."""
    n = 100
    truth = [0] * 89 + [1] * 11
    collapsed = oos_frame("collapsed", truth, [0] * 97 + [1] * 3, [[1.0, 0.0]] * n, [0] * n)
    tracking = oos_frame("tracking", truth, [0] * 88 + [1] * 10 + [0] * 2, [[1.0, 0.0]] * n, [0] * n)
    found = metrics.collapse_findings(pl.concat([collapsed, tracking]))
    assert dict(zip(found["model"], found["verdict"])) == {"collapsed": "WARN", "tracking": "OK"}
    assert metrics.collapse_verdict(0.97, 0.89) == "WARN" and metrics.collapse_verdict(0.99, 0.99) == "OK"


def test_a_constant_forecaster_cannot_win_transition_recall():
    """Over changes of the true regime, per direction: "always calm" gets every change into calm and none into
    turbulence, so 0 on the summary (the worst direction); a model that calls some changes both ways beats it."""
    truth = ([0] * 10 + [1] * 10) * 6
    constant = oos_frame("majority", truth, [0] * 120, [[1.0, 0.0]] * 120, [0] * 120)
    late = truth[:1] + truth[:-1]  # one session late: misses every change
    calling = list(truth)
    for i in range(20, 120, 40):  # but misses one change into turbulence in three
        calling[i] = 0
    table = metrics.metrics_table(pl.concat([constant, oos_frame("model", truth, calling, [[0.5, 0.5]] * 120, late)]))
    pooled = {(r["model"], r["metric"]): r["value"] for r in table.filter(pl.col("fold").is_null()).iter_rows(named=True)}
    assert pooled[("majority", "transition_recall_into_0")] == 1.0
    assert pooled[("majority", "transition_recall_into_1")] == 0.0
    assert pooled[("majority", "transition_recall")] == 0.0
    assert pooled[("model", "transition_recall")] == min(pooled[("model", "transition_recall_into_0")],
                                                         pooled[("model", "transition_recall_into_1")]) > 0
    assert pooled[("model", "transition_count")] == 11  # 11 changes after the first session


def test_macro_f1_interval_brackets_the_estimate():
    rng = np.random.default_rng(3)
    truth = np.repeat(rng.integers(0, 2, 40), 25)  # persistent regimes, 1,000 sessions
    guess = np.where(rng.random(truth.size) < 0.8, truth, 1 - truth)
    table = metrics.metrics_table(oos_frame("m", truth.tolist(), guess.tolist(), [[0.5, 0.5]] * truth.size,
                                            [0] * truth.size))
    pooled = {r["metric"]: r["value"] for r in table.filter(pl.col("fold").is_null()).iter_rows(named=True)}
    assert pooled["macro_f1_lo"] < pooled["macro_f1"] < pooled["macro_f1_hi"]
    assert pooled["macro_f1_hi"] - pooled["macro_f1_lo"] < 0.15
    assert pooled["balanced_accuracy_lo"] < pooled["balanced_accuracy"] < pooled["balanced_accuracy_hi"]


def test_undefined_per_class_scores_are_null_not_zero():
    # regime 1 is never forecast (no precision) and regime 2 never true (no recall)
    m = metrics.classification_metrics(np.array([0, 1, 0]), np.array([0, 0, 2]),
                                       np.full((3, 3), 1 / 3), np.array([0, 0, 0]), 3)
    assert math.isnan(m["precision_1"]) and math.isnan(m["recall_2"]) and m["recall_1"] == 0.0
