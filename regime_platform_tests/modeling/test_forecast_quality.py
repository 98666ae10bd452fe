"""Forecast quality (issue 20): the decision rule in the walk-forward, and choices made inside the training span."""
from __future__ import annotations

import numpy as np

from regime_platform.modeling.decision import apply_min_dwell, count_flips
from regime_platform.modeling.inner_validation import CAPACITY_GRID, choose_and_fit
from regime_platform.modeling.targets import GivenLabels
from regime_platform.modeling.training import TrainingConfig, prepare_samples, prepare_span
from regime_platform.modeling.walk_forward import walk_forward
from regime_platform_tests.modeling.test_training import H, W, given_targets, refit_targets, synthetic


def test_min_dwell_sets_each_models_decisions_per_fold_and_is_recorded():
    dates, X, names, r = synthetic(1800)
    cfg = TrainingConfig(window=W, horizon=H, max_folds=2, seed=0, min_dwell=5)
    res = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], cfg)
    oos = res.oos_predictions.sort("model", "as_of")
    plain = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"],
                         TrainingConfig(window=W, horizon=H, max_folds=2, seed=0)).oos_predictions.sort("model", "as_of")
    assert oos["probabilities"].to_list() == plain["probabilities"].to_list()  # probabilities untouched
    total_flips = {"dwell": 0, "argmax": 0}
    for (model, _fold), rows in oos.group_by(["model", "fold"]):
        proba = np.array(rows.sort("as_of")["probabilities"].to_list())
        predicted = rows.sort("as_of")["predicted_regime"].to_numpy()
        if model == "logistic":
            assert (predicted == apply_min_dwell(proba, 5)).all()
            total_flips["dwell"] += count_flips(predicted)
            total_flips["argmax"] += count_flips(proba.argmax(axis=1))
        else:  # baselines are not smoothed: persistence must stay the regime known at t
            assert (predicted == proba.argmax(axis=1)).all()
    assert total_flips["dwell"] < total_flips["argmax"]
    for rec in res.fold_records:
        assert rec["decision_rule"]["min_dwell"] == 5
        assert rec["decision_rule"]["per_model"] == {"logistic": 5, "majority": 1, "persistence": 1}


def _choices(res, fold):
    rec = next(r for r in res.fold_records if r["fold"] == fold)
    return {m: i["inner_validation"] for m, i in rec["models"].items() if i["inner_validation"] is not None}


def test_inner_validation_never_reads_past_the_folds_training_span():
    """Scramble every feature and return after a fold's last training target: its choices stay the same;
    change the training span's own tail: the evidence changes (so the choice really reads the tail)."""
    dates, X, names, r = synthetic(2000)
    cfg = TrainingConfig(window=W, horizon=H, max_folds=2, seed=0, min_dwell=0, tune_capacity=True)
    models = {"logistic": {}, "random_forest": {"n_estimators": 20, "n_jobs": 1}}
    res = walk_forward(dates, X, names, refit_targets(dates, r), models, cfg)
    rng = np.random.default_rng(1)
    for rec in res.fold_records:
        choices = _choices(res, rec["fold"])
        assert set(choices) == {"logistic", "random_forest"}
        assert all(c["n_validation"] > 0 and c["candidates"] for c in choices.values())
        cut = dates.index(rec["train_target_end"]) + 1
        Xp, rp = X.copy(), r.copy()
        perm = rng.permutation(len(dates) - cut)
        Xp[cut:], rp[cut:] = X[cut:][perm], -r[cut:][perm] * 3.0
        planted = walk_forward(dates, Xp, names, refit_targets(dates, rp), models, cfg)
        assert _choices(planted, rec["fold"]) == choices
    first = res.fold_records[0]
    tail_start = dates.index(first["validation_start"])
    Xt, rt = X.copy(), r.copy()
    Xt[tail_start:], rt[tail_start:] = X[tail_start:][::-1], r[tail_start:][::-1]
    inside = walk_forward(dates, Xt, names, refit_targets(dates, rt), models, cfg)
    assert [c["candidates"] for c in _choices(inside, first["fold"]).values()] != \
        [c["candidates"] for c in _choices(res, first["fold"]).values()]


def test_choices_are_refit_on_the_whole_span_and_used_out_of_sample():
    dates, X, names, r = synthetic(1800)
    cfg = TrainingConfig(window=W, horizon=H, max_folds=1, seed=0, min_dwell=0, tune_capacity=True)
    res = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], cfg)
    info = res.fold_records[0]["models"]["logistic"]
    chosen = info["inner_validation"]
    assert chosen["params"]["C"] in (0.01, 0.1, 1.0) and chosen["min_dwell"] in (1, 3, 5, 10)
    assert info["params"]["C"] == chosen["params"]["C"] and info["min_dwell"] == chosen["min_dwell"]
    assert info["n_fit"] == res.fold_records[0]["n_train"]  # refit on every training sample, not only the fit part
    assert len(chosen["candidates"]) == 3 * 4
    rows = res.oos_predictions.filter(res.oos_predictions["model"] == "logistic").sort("as_of")
    proba = np.array(rows["probabilities"].to_list())
    assert (rows["predicted_regime"].to_numpy() == apply_min_dwell(proba, chosen["min_dwell"])).all()
    # the asset page's fold table says what was chosen
    shown = res.fold_table()["chosen"][0]
    assert shown.startswith(f"logistic: C={chosen['params']['C']}") and f"dwell {chosen['min_dwell']}" in shown


def test_ensemble_averages_its_members_and_round_trips(tmp_path):
    from regime_platform.models import load_model, make_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 10, 3)).astype(np.float32)
    y = (X[:, -1, 0] + 0.5 * rng.normal(size=300) > 0.3).astype(int)
    ens = make_model("ensemble", members="logistic,random_forest", seed=3).fit(X, y, n_classes=2)
    members = [make_model(m, seed=3).fit(X, y, n_classes=2) for m in ("logistic", "random_forest")]
    expected = np.mean([m.predict_proba(X) for m in members], axis=0)
    assert np.allclose(ens.predict_proba(X), expected)
    assert not np.allclose(ens.predict_proba(X), members[0].predict_proba(X))
    ens.save(tmp_path / "ens")
    assert np.allclose(load_model(tmp_path / "ens").predict_proba(X), expected)


def test_ensemble_refuses_a_baseline_member():
    import pytest

    from regime_platform.models import make_model

    with pytest.raises(ValueError, match="not usable"):
        make_model("ensemble", members="logistic,persistence").fit(np.zeros((20, 5, 2)), np.r_[[0] * 10, [1] * 10],
                                                                    n_classes=2)


def test_ensemble_runs_in_the_walk_forward_with_the_decision_rule():
    dates, X, names, r = synthetic(1800)
    cfg = TrainingConfig(window=W, horizon=H, max_folds=1, seed=0, min_dwell=3)
    res = walk_forward(dates, X, names, refit_targets(dates, r), ["ensemble"], cfg, include_baselines=False)
    assert res.fold_records[0]["models"]["ensemble"]["min_dwell"] == 3
    rows = res.oos_predictions.sort("as_of")
    assert (rows["predicted_regime"].to_numpy() == apply_min_dwell(np.array(rows["probabilities"].to_list()), 3)).all()


def test_production_fit_chooses_capacity_on_its_own_tail_when_asked():
    from regime_platform.modeling.inner_validation import CAPACITY_GRID
    from regime_platform.modeling.production import fit_final

    dates, X, names, r = synthetic(1800)
    cfg = TrainingConfig(window=W, horizon=H, seed=0, tune_capacity=True)
    tuned = fit_final(dates, X, names, refit_targets(dates, r), ["logistic"], cfg, include_baselines=False)[0]
    inner = tuned.config["inner_validation"]
    assert inner["params"] in CAPACITY_GRID["logistic"] and inner["n_validation"] > 0
    assert tuned.model.params["C"] == inner["params"]["C"]
    plain = fit_final(dates, X, names, refit_targets(dates, r), ["logistic"], TrainingConfig(window=W, horizon=H),
                      include_baselines=False)[0]
    assert plain.config["inner_validation"] is None and plain.model.params["C"] == 1.0


def test_sharpe_scored_inner_validation_reads_no_return_past_the_training_span():
    dates, X, names, r = synthetic(1800)
    cfg = TrainingConfig(window=W, horizon=H, max_folds=2, seed=0, min_dwell=0, tune_capacity=True,
                         inner_score="sharpe")
    res = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], cfg, returns=r)
    first = res.fold_records[0]
    chosen = first["models"]["logistic"]["inner_validation"]
    assert chosen["scored_by"] == "sharpe" and first["decision_rule"]["inner_score"] == "sharpe"
    cut = dates.index(first["train_target_end"]) + 1
    rp = r.copy()
    rp[cut:] = -rp[cut:] * 5.0  # returns after the span: the walk-forward may read them only for testing
    planted = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], cfg, returns=rp)
    assert planted.fold_records[0]["models"]["logistic"]["inner_validation"] == chosen
    rt = r.copy()
    rt[cut - 40:cut] = -rt[cut - 40:cut] * 5.0  # returns inside the tail do move the evidence
    inside = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], cfg, returns=rt)
    assert inside.fold_records[0]["models"]["logistic"]["inner_validation"]["candidates"] != chosen["candidates"]


def test_sharpe_scoring_without_returns_is_a_clear_error():
    import pytest

    dates, X, names, r = synthetic(1800)
    cfg = TrainingConfig(window=W, horizon=H, max_folds=1, min_dwell=0, inner_score="sharpe")
    with pytest.raises(ValueError, match="needs daily returns"):
        walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], cfg)


def test_a_tail_holding_one_regime_chooses_nothing_and_says_why():
    """On a tail whose targets are all one regime every candidate that never calls the other scores macro-F1 1.0,
    so the choice would go to the model least able to see a change: the defaults stay and the record says why."""
    from regime_platform.modeling.walk_forward import chosen_in_span

    dates, X, names, r = synthetic(2000)
    cfg = TrainingConfig(window=W, horizon=H, max_folds=1, seed=0, min_dwell=0, tune_capacity=True)
    targets, regime, known = given_targets(dates, r)
    first = walk_forward(dates, X, names, targets, ["logistic"], cfg).fold_records[0]
    assert first["models"]["logistic"]["inner_validation"]["score"] is not None  # two regimes in the tail: it chooses
    calm = regime.copy()
    start, end = dates.index(first["validation_start"]) - W, dates.index(first["train_target_end"]) + H
    calm[start:end + 1] = 0.0  # plant a tail that holds one regime (bull) only
    planted = GivenLabels(dates, calm, np.r_[np.full(10, np.nan), calm[:-10]])
    rec = walk_forward(dates, X, names, planted, ["logistic"], cfg).fold_records[0]
    info = rec["models"]["logistic"]
    inner = info["inner_validation"]
    assert inner["n_validation"] > 0 and inner["score"] is None and inner["candidates"] == []
    assert inner["params"] == {} and info["min_dwell"] == 1 and info["params"]["C"] == 1.0
    assert "hold one regime" in inner["note"]
    assert "default capacity, dwell 1 (the tail's targets hold one regime" in chosen_in_span("logistic", info)


def test_production_fit_chooses_by_the_tails_sharpe_exactly_as_a_fold_does():
    """With REGIME_INNER_SCORE=sharpe the production models (what the ledger forecasts with) choose capacity and
    dwell by the Sharpe of their own tail, from the span's returns and risk-off regime — as each fold does — not by
    macro-F1. On this span the two scores pick different dwells, so a production fit that ignored the setting shows."""
    import pytest

    from regime_platform.modeling.decision import DWELL_GRID
    from regime_platform.modeling.inner_validation import choose, tail_economics
    from regime_platform.modeling.production import fit_final
    from regime_platform.modeling.training import model_params, prepare_samples, prepare_span

    dates, X, names, r = synthetic(1800)
    cfg = TrainingConfig(window=W, horizon=H, seed=0, min_dwell=0, tune_capacity=True, inner_score="sharpe")
    prod = fit_final(dates, X, names, refit_targets(dates, r), ["logistic"], cfg, returns=r,
                     include_baselines=False)[0]
    inner = prod.config["inner_validation"]
    assert inner["scored_by"] == "sharpe" and prod.config["inner_score"] == "sharpe"
    # the same span, its Sharpe-scored choice computed from the pieces a fold uses
    targets = refit_targets(dates, r)
    samples = prepare_samples(dates, X, names, targets, cfg)
    labels = targets.fold_labels(samples.dates[int(samples.sample_t[-1]) + H], None).align(samples.dates)
    span = prepare_span(samples, samples.sample_t, labels, cfg, "production fit")
    args = ("logistic", model_params("logistic", {}, cfg), span)
    by_sharpe = choose(*args, tune_capacity=True, dwell_grid=DWELL_GRID,
                       economic=tail_economics(cfg, span, labels, r, "production fit"))
    by_f1 = choose(*args, tune_capacity=True, dwell_grid=DWELL_GRID)
    assert (by_sharpe.params, by_sharpe.min_dwell) != (by_f1.params, by_f1.min_dwell)  # the span tells them apart
    assert inner == by_sharpe.record()
    assert prod.min_dwell == by_sharpe.min_dwell and prod.model.params["C"] == by_sharpe.params["C"]
    with pytest.raises(ValueError, match="needs daily returns"):
        fit_final(dates, X, names, refit_targets(dates, r), ["logistic"], cfg, include_baselines=False)


def _flipped_after(labels, cut):
    """A user's file whose every label from session ``cut`` on is the other regime (known regimes alike)."""
    regime, known = labels.regime.astype(float), labels.known_regime.astype(float)
    for a in (regime, known):
        a[cut:] = np.where(a[cut:] >= 0, 1 - a[cut:], np.nan)
        a[a < 0] = np.nan
    return GivenLabels(labels.dates, regime, known)


def test_gradient_boosting_capacity_is_chosen_on_the_training_span_alone():
    """Flip every label and shuffle every feature row after a fold's last training target: the gradient boosting
    capacity and dwell the fold chose stay the same, candidate by candidate."""
    dates, X, names, r = synthetic(2000)
    labels, _, _ = given_targets(dates, r)
    cfg = TrainingConfig(window=W, horizon=H, max_folds=1, seed=0, min_dwell=0, tune_capacity=True)
    models = {"gradient_boosting": {}}
    res = walk_forward(dates, X, names, labels, models, cfg)
    rng = np.random.default_rng(2)
    for rec in res.fold_records:
        chosen = _choices(res, rec["fold"])["gradient_boosting"]
        assert chosen["n_validation"] > 0 and len(chosen["candidates"]) == 3 * 4
        assert chosen["params"] in CAPACITY_GRID["gradient_boosting"]
        assert rec["models"]["gradient_boosting"]["params"]["max_depth"] == chosen["params"]["max_depth"]
        cut = dates.index(rec["train_target_end"]) + 1
        Xp = X.copy()
        Xp[cut:] = X[cut:][rng.permutation(len(dates) - cut)]
        planted = walk_forward(dates, Xp, names, _flipped_after(labels, cut), models, cfg)
        assert _choices(planted, rec["fold"])["gradient_boosting"] == chosen


def test_gradient_boosting_fit_on_a_span_ignores_every_later_row():
    """The same through the step every fold and the production fit share (choose_and_fit): with the later years'
    labels flipped and features shuffled, the choice and the fitted model's probabilities on the training span are
    bit-for-bit the same."""
    dates, X, names, r = synthetic(1800)
    labels, _, _ = given_targets(dates, r)
    cfg = TrainingConfig(window=W, horizon=H, seed=0, min_dwell=0, tune_capacity=True)
    cut = 1500  # the span's tail holds both regimes, so the tail really chooses
    Xp = X.copy()
    Xp[cut:] = X[cut:][np.random.default_rng(3).permutation(len(dates) - cut)]
    fits = []
    for feats, targets in ((X, labels), (Xp, _flipped_after(labels, cut))):
        samples = prepare_samples(dates, feats, names, targets, cfg)
        fold = targets.fold_labels(dates[cut - 1], None).align(dates)
        span = prepare_span(samples, samples.sample_t[samples.sample_t + H < cut], fold, cfg, "span")
        fitted = choose_and_fit("gradient_boosting", {}, span, fold, cfg, where="span")
        fits.append((fitted, span))
    (a, span_a), (b, span_b) = fits
    assert a.inner == b.inner and a.min_dwell == b.min_dwell and a.inner["candidates"]
    np.testing.assert_array_equal(span_a.train_t, span_b.train_t)
    W_train = span_a.windows(span_a.train_t)
    np.testing.assert_array_equal(W_train, span_b.windows(span_b.train_t))
    np.testing.assert_array_equal(a.model.predict_proba(W_train), b.model.predict_proba(W_train))
    assert a.model.fit_info["n_fit"] == span_a.train_t.size


def test_a_fit_before_the_tail_is_made_once_per_span_and_changes_nothing(monkeypatch):
    """The chosen capacity candidate is the chosen fit's calibration probe, and an ensemble's tail candidate is its
    members' probes: each is fit once per span. The rows and records equal those of fitting every probe afresh."""
    import regime_platform.modeling.walk_forward as wf
    from regime_platform.models.base import RegimeModel

    dates, X, names, r = synthetic(1800)
    cfg = TrainingConfig(window=W, horizon=H, max_folds=1, seed=0, min_dwell=0, tune_capacity=True)
    models = {"random_forest": {}, "ensemble": {"members": "logistic,random_forest"}}
    fits: list[str] = []
    real_fit = RegimeModel.fit

    def counting_fit(self, *args, **kwargs):
        fits.append(self.name)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(RegimeModel, "fit", counting_fit)

    def run(name):
        fits.clear()
        res = walk_forward(dates, X, names, refit_targets(dates, r), {name: models[name]}, cfg,
                           include_baselines=False)
        return res, len(fits)

    reused = {name: run(name) for name in models}

    class Forgetful(dict):  # a memo that keeps nothing: every probe is fit afresh, as before the reuse
        def __setitem__(self, key, value):
            pass

    real_prepare = wf.prepare_span

    def forgetful_span(*args, **kwargs):
        span = real_prepare(*args, **kwargs)
        span.tail_fits = Forgetful()
        return span

    monkeypatch.setattr(wf, "prepare_span", forgetful_span)
    afresh = {name: run(name) for name in models}
    for name in models:
        assert reused[name][0].oos_predictions.equals(afresh[name][0].oos_predictions)
        assert reused[name][0].fold_records_json() == afresh[name][0].fold_records_json()
    # the forest: three candidates and the final fit (its probe is the chosen candidate) against five fits
    assert (reused["random_forest"][1], afresh["random_forest"][1]) == (4, 5)
    # the ensemble: each member's probe (the tail candidate and its calibration probe at once) and refit: 4 against 6
    assert (reused["ensemble"][1], afresh["ensemble"][1]) == (4, 6)
