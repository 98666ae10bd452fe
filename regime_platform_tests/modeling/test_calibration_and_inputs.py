"""Calibrated probabilities, the ensemble of calibrated members, and the model inputs (issue 20)."""
from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest

from regime_platform.defs.resources import RegimeSettings
from regime_platform.features.compute import COMPACT_FEATURES, MODEL_FEATURES, model_feature_set
from regime_platform.modeling.feature_selection import select_features
from regime_platform.modeling.training import TrainingConfig, fit_model, prepare_samples, prepare_span
from regime_platform.modeling.walk_forward import walk_forward
from regime_platform.models.calibration import apply_temperature, fit_temperature, log_loss
from regime_platform.settings import Settings, SettingsError
from regime_platform_tests.modeling.test_training import FAST, TINY, H, W, refit_targets, synthetic


def test_temperature_keeps_the_argmax_and_repairs_overconfidence():
    rng = np.random.default_rng(1)
    n = 2000
    y = rng.integers(0, 2, n)
    # a model that is right 70 % of the time but always says 0.97
    right = rng.random(n) < 0.7
    said = np.where(right, y, 1 - y)
    proba = np.where(said[:, None] == np.arange(2), 0.97, 0.03)
    cal = fit_temperature(proba, y)
    assert cal.temperature > 1.5  # softened
    scaled = apply_temperature(proba, cal.temperature)
    assert (scaled.argmax(axis=1) == proba.argmax(axis=1)).all()
    assert np.allclose(scaled.sum(axis=1), 1.0)
    assert abs(scaled.max(axis=1).mean() - 0.7) < 0.03  # now says what it achieves
    assert log_loss(scaled, y) < log_loss(proba, y) - 0.3
    assert cal.record()["tail_log_loss_after"] < cal.record()["tail_log_loss_before"]


def test_a_tail_with_one_regime_leaves_the_temperature_at_one():
    proba = np.tile([0.8, 0.2], (50, 1))
    cal = fit_temperature(proba, np.zeros(50, dtype=int))
    assert cal.temperature == 1.0 and "regime 0 only" in cal.note
    assert apply_temperature(proba, 1.0) is proba or np.array_equal(apply_temperature(proba, 1.0), proba)
    zero = apply_temperature(np.array([[1.0, 0.0, 0.0]]), 3.0)  # an impossible class stays impossible
    assert zero[0, 1] == 0.0 and zero[0, 0] == 1.0


def _span(config=TINY, n=1800):
    dates, X, names, r = synthetic(n)
    targets = refit_targets(dates, r)
    samples = prepare_samples(dates, X, names, targets, config)
    labels = targets.fold_labels(dates[-1], None).align(dates)
    return prepare_span(samples, samples.sample_t, labels, config, "test span")


def test_fit_model_calibrates_on_the_tail_and_the_ensemble_averages_calibrated_members(tmp_path):
    from regime_platform.models import load_model

    span = _span()
    cfg = replace(TINY, calibration="temperature")
    W_test = span.windows(span.train_t[-200:])
    rf = fit_model("random_forest", FAST["random_forest"], span, cfg)
    assert rf.fit_info["calibration"]["n_validation"] == span.val_t.size == rf.fit_info["calibration"]["n_rows"] > 0
    assert (rf.fit_info["calibration"]["rows_start"], rf.fit_info["calibration"]["rows_end"]) == (
        span.dates[span.val_t[0]], span.dates[span.val_t[-1]])  # the tail, and only the tail
    raw = fit_model("random_forest", FAST["random_forest"], span, replace(cfg, calibration="none"))
    assert raw.temperature == 1.0 and "calibration" not in raw.fit_info
    assert rf.temperature != 1.0
    assert (rf.predict(W_test) == raw.predict(W_test)).all()  # a single model's decisions are unchanged
    assert not np.allclose(rf.predict_proba(W_test), raw.predict_proba(W_test))

    ens = fit_model("ensemble", {"members": "logistic,random_forest"}, span, replace(cfg, calibration="none"))
    members = [fit_model(m, {}, span, cfg) for m in ("logistic", "random_forest")]
    assert ens.fit_info["member_temperatures"] == {m.name: m.temperature for m in members}
    expected = np.mean([m.predict_proba(W_test) for m in members], axis=0)
    assert np.allclose(ens.predict_proba(W_test), expected)
    uncalibrated = np.mean([fit_model(m, {}, span, replace(cfg, calibration="none")).predict_proba(W_test)
                            for m in ("logistic", "random_forest")], axis=0)
    assert not np.allclose(ens.predict_proba(W_test), uncalibrated)
    ens.save(tmp_path / "ens")
    assert np.allclose(load_model(tmp_path / "ens").predict_proba(W_test), expected)  # temperatures saved


def test_compact_features_are_scale_free_and_settings_refuse_price_levels():
    assert set(COMPACT_FEATURES) <= set(MODEL_FEATURES) and len(COMPACT_FEATURES) == 10
    assert model_feature_set(Settings.from_env({}).features) == COMPACT_FEATURES
    assert model_feature_set(Settings.from_env({"REGIME_FEATURES": "scale_free"}).features) == MODEL_FEATURES
    assert model_feature_set("sma_ratio_200, ret_5d") == ["ret_5d", "sma_ratio_200"]
    with pytest.raises(SettingsError, match="REGIME_FEATURES.*macd.*index points"):
        RegimeSettings(features="ret_5d,macd").settings()
    with pytest.raises(SettingsError, match="REGIME_FEATURES.*rsi_41 is not a feature column"):
        RegimeSettings(features="rsi_41").settings()
    with pytest.raises(SettingsError, match="REGIME_CALIBRATION"):
        Settings.from_env({"REGIME_CALIBRATION": "isotonic"})


def test_feature_selection_keeps_the_relevant_and_drops_a_near_duplicate():
    rng = np.random.default_rng(0)
    n = 1500
    y = rng.integers(0, 2, n)
    signal = y + 0.5 * rng.normal(size=n)
    rows = np.column_stack([rng.normal(size=n), signal, signal + 0.01 * rng.normal(size=n), rng.normal(size=n)])
    chosen = select_features(rows, y, ["noise_a", "signal", "signal_twin", "noise_b"], max_features=2)
    assert "signal" in chosen.selected or "signal_twin" in chosen.selected
    assert not {"signal", "signal_twin"} <= set(chosen.selected)
    assert set(chosen.redundant) & {"signal", "signal_twin"}
    assert len(chosen.selected) == 2


def test_per_fold_feature_selection_reads_only_the_training_spans_tail():
    dates, X, names, r = synthetic(1800)
    cfg = TrainingConfig(window=W, horizon=H, max_folds=2, seed=0, feature_selection=True)
    res = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], cfg, include_baselines=False)
    rec = res.fold_records[-1]
    assert rec["feature_selection"]["selected"] == rec["features"]
    assert set(rec["features"]) <= set(names)
    for fold in res.fold_records:  # the samples it read are exactly the fold's validation tail …
        read = fold["feature_selection"]
        if read["n_rows"]:
            assert (read["rows_start"], read["rows_end"], read["n_rows"]) == (
                fold["validation_start"], fold["validation_end"], fold["n_validation"])
        else:  # … or, when the tail's targets hold one regime (fold 0 here), nothing: every candidate kept
            assert "hold regime 0 only: every candidate kept" in read["note"] and fold["features"] == names
    assert [bool(fold["feature_selection"]["n_rows"]) for fold in res.fold_records] == [False, True]
    # plant nonsense after the fold's training span: every fold's choice stays the same
    last_target = max(dt.date.fromisoformat(str(x["train_target_end"])[:10]) for x in res.fold_records[:1])
    cut = dates.index(last_target) + 1
    X2 = X.copy()
    X2[cut:] = np.random.default_rng(5).normal(size=X2[cut:].shape) * 50
    res2 = walk_forward(dates, X2, names, refit_targets(dates, r), ["logistic"], cfg, include_baselines=False)
    assert res2.fold_records[0]["feature_selection"] == res.fold_records[0]["feature_selection"]
    assert res2.fold_records[0]["features"] == res.fold_records[0]["features"]


def test_the_inner_validation_chooses_the_sequence_models_capacity_inside_the_span():
    from regime_platform.modeling.inner_validation import CAPACITY_GRID

    dates, X, names, r = synthetic(1800)
    cfg = TrainingConfig(window=W, horizon=H, max_folds=1, seed=0, epochs=2, patience=1, tune_capacity=True)
    res = walk_forward(dates, X, names, refit_targets(dates, r), ["cnn"], cfg, include_baselines=False)
    inner = res.fold_records[0]["models"]["cnn"]["inner_validation"]
    assert [c["params"] for c in inner["candidates"]] == CAPACITY_GRID["cnn"]
    assert inner["params"] in CAPACITY_GRID["cnn"]
    assert all(res.fold_records[0]["models"]["cnn"]["params"][k] == v for k, v in inner["params"].items())
