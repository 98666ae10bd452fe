"""Recency weighting of the training samples (REGIME_RECENCY_HALF_LIFE): the weights, the models honouring them, off
being exactly the unweighted fit, the half-life chosen on the training span's tail alone, and the setting."""
from __future__ import annotations

import datetime as dt
import re

import numpy as np
import polars as pl
import pytest

from regime_platform.modeling import training
from regime_platform.modeling.production import ProductionModel, fit_final
from regime_platform.modeling.training import RECENCY_GRID, TrainingConfig, recency_weights
from regime_platform.modeling.walk_forward import walk_forward
from regime_platform.models import RegimeModel, make_model
from regime_platform.models.base import oversample, weights_refusal
from regime_platform.settings import Settings, SettingsError
from regime_platform_tests.modeling.test_training import H, W, refit_targets, synthetic

BASE = dict(window=W, horizon=H, max_folds=1, seed=0, min_dwell=0, tune_capacity=True)
MODELS = {"logistic": {}, "random_forest": {"n_estimators": 30}}


def test_a_sample_weighs_half_per_half_life_before_the_fits_last_sample_and_the_weights_average_one():
    t = np.array([10, 110, 210, 310])
    w = recency_weights(t, 100)
    np.testing.assert_allclose(w / w[-1], [0.125, 0.25, 0.5, 1.0])
    assert w.mean() == pytest.approx(1.0)
    # relative to the fit's own last sample, whatever the absolute indices: only ages matter
    np.testing.assert_allclose(recency_weights(t + 5000, 100), w)
    np.testing.assert_allclose(recency_weights(np.arange(0, 50), 7.5)[[-16, -1]] / recency_weights(np.arange(0, 50),
                                                                                                   7.5)[-1], [0.25, 1])
    assert recency_weights(t, None) is None


def flipped(n_early=600, n_late=400, seed=0):
    """Windows (n, 2, 1) whose relation flips: early samples are regime 1 when x > 0, late ones when x < 0. The early
    relation holds more samples, so an unweighted fit follows it; a fit weighted towards the end must follow the late."""
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], size=n_early + n_late) + rng.normal(0, 0.1, n_early + n_late)
    y = np.where(np.arange(x.size) < n_early, x > 0, x < 0).astype(np.int64)
    X = np.repeat(x[:, None, None], 2, axis=1).astype(np.float32)
    return X, y


@pytest.mark.parametrize("name, params", [
    ("logistic", {}), ("random_forest", {"n_estimators": 30}), ("gradient_boosting", {"max_iter": 30}),
    ("lstm", {"hidden": 8, "epochs": 8, "lr": 2e-2, "batch_size": 32}),
    ("cnn", {"channels": 4, "epochs": 8, "lr": 2e-2, "batch_size": 32}),
    ("ensemble", {"members": "logistic,random_forest"}),
    ("random_forest", {"n_estimators": 30, "oversampling": "random"}),
])
def test_a_fit_weighted_towards_the_end_follows_the_late_relation(name, params):
    X, y = flipped(300, 200) if name in ("lstm", "cnn") else flipped()  # half the samples: the networks' fits are slow
    probe = np.array([-1.0, 1.0], dtype=np.float32).reshape(2, 1, 1).repeat(2, axis=1)  # the late rule: x<0 → 1
    plain = make_model(name, **params).fit(X, y, n_classes=2)
    weighted = make_model(name, **params).fit(X, y, n_classes=2, sample_weight=recency_weights(np.arange(y.size), 30))
    assert plain.predict(probe).tolist() == [0, 1]  # the early relation, which most samples hold
    assert weighted.predict(probe).tolist() == [1, 0]
    assert "sample_weight" in weighted.fit_info and "sample_weight" not in plain.fit_info
    if name == "ensemble":
        assert all("sample_weight" in m.fit_info for m in weighted.members_)


def test_weights_are_refused_by_baselines_and_smote_and_must_be_one_per_sample():
    X, y = flipped(60, 40)
    w = recency_weights(np.arange(y.size), 10)
    with pytest.raises(ValueError, match="persistence is a baseline and is never weighted"):
        make_model("persistence").fit(X, y, n_classes=2, sample_weight=w)
    with pytest.raises(ValueError, match=re.escape(weights_refusal("smote"))):
        make_model("logistic", oversampling="smote").fit(X, y, n_classes=2, sample_weight=w)
    with pytest.raises(ValueError, match=re.escape(weights_refusal("smote"))):  # the resampling itself, called directly
        oversample(X, y, w, "smote", seed=0)
    with pytest.raises(ValueError, match="logistic: sample_weight must be 100 finite non-negative weights"):
        make_model("logistic").fit(X, y, n_classes=2, sample_weight=w[:-1])


def spy_fits(monkeypatch) -> list[tuple[int, np.ndarray | None, str]]:
    """Every RegimeModel.fit during the test: (samples, sample_weight, model)."""
    calls, fit = [], RegimeModel.fit

    def spying(self, X, y, **kw):
        calls.append((len(y), kw.get("sample_weight"), self.name))
        return fit(self, X, y, **kw)

    monkeypatch.setattr(RegimeModel, "fit", spying)
    return calls


def test_off_passes_no_weights_so_fits_and_model_versions_are_the_unweighted_ones(monkeypatch):
    dates, X, names, r = synthetic(1800)
    calls = spy_fits(monkeypatch)
    off = walk_forward(dates, X, names, refit_targets(dates, r), MODELS, TrainingConfig(**BASE), returns=r)
    assert calls and all(w is None for _, w, _ in calls)
    assert all(info["recency_half_life"] is None for rec in off.fold_records for info in rec["models"].values())
    assert "recency_half_life" not in TrainingConfig().to_dict()  # the dict a model version hashes, as before
    # the weighted path with weights that are all but equal lands on the same forecasts: off is the unweighted fit
    monkeypatch.undo()
    rec = off.fold_records[0]
    chosen = rec["models"]["logistic"]["params"]
    weighted = walk_forward(dates, X, names, refit_targets(dates, r), MODELS,
                            TrainingConfig(**BASE, recency_half_life=1e12), returns=r)
    a = off.oos_predictions.filter(pl.col("model") == "logistic").sort("as_of")
    b = weighted.oos_predictions.filter(pl.col("model") == "logistic").sort("as_of")
    # a half-life of 10^12 sessions weighs every sample within 1e-9 of 1: the same forecasts, to rounding
    np.testing.assert_allclose(np.array(a["probabilities"].to_list()), np.array(b["probabilities"].to_list()),
                               atol=1e-6)
    assert weighted.fold_records[0]["models"]["logistic"]["params"] == chosen


def test_a_fixed_half_life_weighs_every_fit_relative_to_its_own_last_sample_and_changes_the_forecasts(monkeypatch):
    dates, X, names, r = synthetic(1800)
    plain = walk_forward(dates, X, names, refit_targets(dates, r), MODELS, TrainingConfig(**BASE), returns=r)
    calls = spy_fits(monkeypatch)
    fixed = walk_forward(dates, X, names, refit_targets(dates, r), MODELS,
                         TrainingConfig(**BASE, recency_half_life=100.0), returns=r)
    rec = fixed.fold_records[0]
    pos = {d: i for i, d in enumerate(dates)}
    assert rec["n_train"] == pos[rec["train_end"]] - pos[rec["train_start"]] + 1  # consecutive samples: age = offset
    sizes = set()
    for n, w, model in calls:
        if model in ("majority", "persistence"):
            assert w is None  # baselines are never weighted
            continue
        np.testing.assert_allclose(w, recency_weights(np.arange(n), 100.0))
        sizes.add(n)
    # the candidates and the calibration probe fit before the tail, the returned model on the whole span
    assert sizes == {rec["n_epoch_selection_fit"], rec["n_train"]}
    for name in MODELS:
        assert rec["models"][name]["recency_half_life"] == 100.0
        assert rec["models"][name]["inner_validation"]["recency_half_life_from"] == "fixed"
        a = plain.oos_predictions.filter(pl.col("model") == name).sort("as_of")["probabilities"].to_list()
        b = fixed.oos_predictions.filter(pl.col("model") == name).sort("as_of")["probabilities"].to_list()
        assert not np.allclose(np.array(a), np.array(b), atol=1e-3), name
    for m in ("persistence", "majority"):
        assert (plain.oos_predictions.filter(pl.col("model") == m).sort("as_of")["predicted_regime"].to_list()
                == fixed.oos_predictions.filter(pl.col("model") == m).sort("as_of")["predicted_regime"].to_list())


def _choices(res):
    return {rec["fold"]: {m: (info["inner_validation"], info["recency_half_life"], info["params"], info["min_dwell"],
                              info["calibration"])
                          for m, info in rec["models"].items() if info["inner_validation"]}
            for rec in res.fold_records}


def test_the_tail_chooses_the_half_life_from_the_span_alone(monkeypatch):
    dates, X, names, r = synthetic(1800)
    tail = TrainingConfig(**BASE, recency_half_life="tail")
    logs: list[str] = []
    calls = spy_fits(monkeypatch)
    res = walk_forward(dates, X, names, refit_targets(dates, r), MODELS, tail, returns=r, log=logs.append)
    monkeypatch.undo()
    rec = res.fold_records[0]
    # the returned model of each is fit on the whole span with the chosen half-life, relative to the span's last sample
    finals = {m: w for n, w, m in calls if n == rec["n_train"] and m in MODELS}
    assert any(rec["models"][m]["recency_half_life"] is not None for m in MODELS)  # the data make the tail weigh
    for m in MODELS:
        life = rec["models"][m]["recency_half_life"]
        if life is None:
            assert finals[m] is None
        else:
            np.testing.assert_allclose(finals[m], recency_weights(np.arange(rec["n_train"]), life))
    assert rec["recency_half_life"] == "tail"
    for name in MODELS:
        info = rec["models"][name]
        inner = info["inner_validation"]
        assert inner["score"] is not None and inner["recency_half_life_from"] == "tail"
        assert [c["half_life"] for c in inner["candidates"]][::12] == list(RECENCY_GRID)  # 3 capacities × 4 dwells
        best = max(c["score"] for c in inner["candidates"])
        first_best = next(c for c in inner["candidates"] if c["score"] == best)
        assert (inner["recency_half_life"], inner["params"], inner["min_dwell"]) == (
            first_best["half_life"], first_best["params"], first_best["min_dwell"])
        assert info["recency_half_life"] == inner["recency_half_life"]
        assert any(f"{name}: inner validation chose" in s and "recency half-life" in s for s in logs)
    # every row after the fold's last training sample planted (features of every test window and more, and the
    # returns after its last training target): every choice, candidate score and temperature stays the same, while
    # the forecasts move
    cut = rec["last_train_t"] + 1
    planted_X = X.copy()
    planted_X[cut:] = -3.0 * planted_X[cut:] + 0.01
    planted_r = r.copy()
    after = dates.index(rec["train_target_end"]) + 1
    planted_r[after:] = -5.0 * planted_r[after:]
    planted = walk_forward(dates, planted_X, names, refit_targets(dates, planted_r), MODELS, tail, returns=planted_r)
    assert _choices(planted) == _choices(res)
    assert not planted.oos_predictions.sort("model", "as_of")["probabilities"].to_list() == (
        res.oos_predictions.sort("model", "as_of")["probabilities"].to_list())
    # the same plant inside the tail moves the evidence: the test can see a leak
    inside = X.copy()
    inside[cut - 120:cut] = -3.0 * inside[cut - 120:cut] + 0.01
    moved = walk_forward(dates, inside, names, refit_targets(dates, r), MODELS, tail, returns=r)
    assert ([c["score"] for c in _choices(moved)[rec["fold"]]["logistic"][0]["candidates"]]
            != [c["score"] for c in _choices(res)[rec["fold"]]["logistic"][0]["candidates"]])


def test_the_production_model_records_the_half_life_it_was_fit_with(tmp_path):
    dates, X, names, r = synthetic(1800)
    tail = TrainingConfig(window=W, horizon=H, seed=0, min_dwell=0, tune_capacity=True, recency_half_life="tail")
    (prod,) = fit_final(dates, X, names, refit_targets(dates, r), ["logistic"], tail, returns=r,
                        include_baselines=False, fit_date=dt.date(2024, 5, 1))
    inner = prod.config["inner_validation"]
    assert inner["recency_half_life_from"] == "tail" and prod.recency_half_life == inner["recency_half_life"]
    assert prod.config["recency_half_life"] == "tail"
    prod.save(tmp_path / "m")
    assert ProductionModel.load(tmp_path / "m").recency_half_life == prod.recency_half_life
    (plain,) = fit_final(dates, X, names, refit_targets(dates, r), ["logistic"],
                         TrainingConfig(window=W, horizon=H, seed=0, min_dwell=0, tune_capacity=True),
                         returns=r, include_baselines=False, fit_date=dt.date(2024, 5, 1))
    assert plain.recency_half_life is None and plain.model_version != prod.model_version


def test_fit_model_refuses_an_unresolved_tail():
    with pytest.raises(ValueError, match="REGIME_RECENCY_HALF_LIFE=tail is chosen on each span's tail"):
        TrainingConfig(recency_half_life="tail").fixed_half_life()
    assert training.TrainingConfig(recency_half_life=756.0).fixed_half_life() == 756.0


@pytest.mark.parametrize("value, parsed", [("off", None), ("tail", "tail"), ("756", 756.0), ("  252.5 ", 252.5)])
def test_the_setting_parses(value, parsed):
    settings = Settings(recency_half_life=value)
    assert settings.recency_half_life_value() == parsed
    assert TrainingConfig.from_settings(settings).recency_half_life == parsed


@pytest.mark.parametrize("value", ["0", "-252", "often", "inf", "nan"])
def test_a_half_life_that_is_no_positive_number_is_refused_in_one_sentence(value):
    sentence = (rf"REGIME_RECENCY_HALF_LIFE='{value}' is neither `off`, `tail` nor a positive number of sessions; use "
                r"e.g. `tail` or 756\.")
    with pytest.raises(SettingsError, match=sentence):
        Settings(recency_half_life=value).validate()
    with pytest.raises(SettingsError, match=sentence):
        Settings.from_env({"REGIME_RECENCY_HALF_LIFE": value})


def test_weights_with_smote_are_refused_in_one_sentence_and_random_oversampling_carries_them():
    # the one sentence (the model layer owns it): it names both settings, the value when known, and what to do
    assert weights_refusal("smote", "tail") == ("REGIME_RECENCY_HALF_LIFE=tail needs REGIME_OVERSAMPLING=none or random "
                                                "(a SMOTE row lies between two sessions and has no weight of its own); "
                                                "set one of them otherwise.")
    assert weights_refusal("none") is None and weights_refusal("random", 756.0) is None
    with pytest.raises(SettingsError, match=re.escape(weights_refusal("smote", "tail"))):
        Settings(recency_half_life="tail", oversampling="smote").validate()
    with pytest.raises(ValueError, match=re.escape(weights_refusal("smote", 756.0))):
        TrainingConfig(recency_half_life=756.0, oversampling="smote")
    with pytest.raises(ValueError, match=r"REGIME_RECENCY_HALF_LIFE=-1 is neither `off`, `tail` nor a positive"):
        TrainingConfig(recency_half_life=-1)
    Settings(recency_half_life="tail", oversampling="random").validate()
