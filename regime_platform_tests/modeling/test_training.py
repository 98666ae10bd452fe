import datetime as dt
from dataclasses import replace

import duckdb
import numpy as np
import polars as pl
import pytest

from regime_platform import storage as wh
from regime_platform.modeling import fold_records, training
from regime_platform.modeling.leakage import verify_fold_records
from regime_platform.modeling.production import ProductionModel, fit_final
from regime_platform.modeling.scaling import SessionScaler
from regime_platform.modeling.sequences import as_label_array
from regime_platform.modeling.targets import FoldLabels, GivenLabels, RefitLabels
from regime_platform.modeling.training import TrainingConfig
from regime_platform.modeling.walk_forward import OOS_SCHEMA, walk_forward
from regime_platform_tests.conftest import weekdays

W, H = 30, 5
TINY = TrainingConfig(window=W, horizon=H, epochs=2, patience=2, max_folds=2, seed=7)
FAST = {"lstm": {"hidden": 16}, "cnn": {"channels": 8}, "random_forest": {"n_estimators": 30}}


def synthetic(n=2000, seed=0):
    """Two-state Markov volatility regimes; features = trailing return/vol statistics (NaN warm-up)."""
    rng = np.random.default_rng(seed)
    state = np.zeros(n, dtype=int)
    for i in range(1, n):
        stay = 0.985 if state[i - 1] == 0 else 0.95
        state[i] = state[i - 1] if rng.random() < stay else 1 - state[i - 1]
    r = rng.normal(0.0004, np.where(state == 1, 0.025, 0.008))
    s = pl.Series(r)
    X = np.column_stack(
        [
            r,
            s.rolling_sum(5).to_numpy(),
            s.rolling_std(5).to_numpy(),
            s.rolling_std(20).to_numpy(),
        ]
    )
    return weekdays(dt.date(2000, 1, 3), n), X, ["ret_1d", "ret_5d", "vol_5d", "vol_20d"], r


class VolThresholdLabeler:
    """Fake labeler: hindsight = centred 21-day vol above the fit span's 70th percentile; online = trailing."""

    n_regimes = 2
    name = "fake_vol"

    def fit(self, frame: pl.DataFrame):
        self.threshold = float(np.nanquantile(self._centred(frame), 0.7))
        self.fit_rows = frame.height
        return self

    @staticmethod
    def _centred(frame):
        return frame["r"].rolling_std(21, center=True, min_samples=5).to_numpy()

    def predict(self, frame):
        v = self._centred(frame)
        return np.where(np.isnan(v), np.nan, (v > self.threshold).astype(float))

    def predict_online(self, frame):
        v = frame["r"].rolling_std(21, min_samples=5).to_numpy()
        return np.where(np.isnan(v), np.nan, (v > self.threshold).astype(float))


def refit_targets(dates, r):
    return RefitLabels(pl.DataFrame({"date": dates, "r": r}), VolThresholdLabeler)


def given_targets(dates, r, lag=10):
    vol = pl.Series(r).rolling_std(21, center=True, min_samples=5).to_numpy()
    regime = (vol > np.nanquantile(vol, 0.7)).astype(float)
    known = np.r_[np.full(lag, np.nan), regime[:-lag]]  # a user's file with label_lag = 10
    return GivenLabels(dates, regime, known), regime, known


def test_walk_forward_output_shape_records_and_determinism():
    dates, X, names, r = synthetic()
    models = {"lstm": FAST["lstm"], "cnn": FAST["cnn"], "random_forest": FAST["random_forest"], "logistic": {}}
    logs, ticks = [], []
    res = walk_forward(dates, X, names, refit_targets(dates, r), models, TINY, log=logs.append,
                       progress=lambda d, t, w: ticks.append((d, t)))
    oos = res.oos_predictions
    assert list(oos.columns) == list(OOS_SCHEMA) and dict(oos.schema) == OOS_SCHEMA
    assert set(oos["model"].unique()) == {"lstm", "cnn", "random_forest", "logistic", "majority", "persistence"}
    assert len(res.fold_records) == 2 and not res.single_split
    assert ticks[-1] == (12, 12)
    assert any("epoch 2/2" in s for s in logs)
    # target_date is h sessions after as_of
    pos = {d: i for i, d in enumerate(dates)}
    sample = oos.filter(pl.col("model") == "lstm")
    assert all(pos[b] - pos[a] == H for a, b in zip(sample["as_of"], sample["target_date"]))
    assert (oos["horizon"] == H).all()
    probs = np.array(sample["probabilities"].to_list())
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_array_equal(probs.argmax(axis=1), sample["predicted_regime"].to_numpy())
    # one row per test sample per model, folds are the last two test years
    assert oos.group_by("model").len()["len"].n_unique() == 1
    years = [rec["test_year"] for rec in res.fold_records]
    assert years == [dates[-1].year - 1, dates[-1].year]  # max_folds keeps the LAST folds
    for rec in res.fold_records:
        assert rec["labeler_fit_end"] <= rec["train_target_end"]
        assert rec["scaler_fit_end"] <= rec["train_end"]
        assert rec["embargo_sessions"] >= W + H
        assert set(rec["models"]) == set(oos["model"].unique())
        assert rec["models"]["lstm"]["epochs"] == 2 and rec["class_counts"][1] > 0
    assert verify_fold_records(res.fold_records, dates, stored_labeler="fake_vol", allowed_features=names) == []
    assert {t["model"] for t in res.timings} >= {"lstm", "majority"}

    again = walk_forward(dates, X, names, refit_targets(dates, r), models, TINY)
    assert again.oos_predictions.equals(oos)


def test_scaler_is_fit_only_on_sessions_up_to_the_last_training_t():
    dates, X, names, r = synthetic()
    train_t = np.arange(W - 1 + 20, 900)
    a = SessionScaler().fit(X, train_t, W, dates=dates)
    planted = X.copy()
    planted[train_t[-1] + 1 :] = 1e9  # huge values right after the last training t
    b = SessionScaler().fit(planted, train_t, W, dates=dates)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.std, b.std)
    assert a.fit_end == dates[train_t[-1]] and a.fit_start == dates[train_t[0] - W + 1]
    planted[train_t[-1]] = 1e9  # …while a value AT the last training t does move it
    assert not np.array_equal(SessionScaler().fit(planted, train_t, W).mean, a.mean)

    # and through the driver: plant after each fold's last training t, same scaler in the fold record
    cfg = TrainingConfig(window=W, horizon=H, max_folds=1)
    res = walk_forward(dates, X, names, given_targets(dates, r)[0], [], cfg)
    last_t = res.fold_records[0]["last_train_t"]
    planted = X.copy()
    planted[last_t + 1 :, 2] *= 1e6
    res2 = walk_forward(dates, planted, names, given_targets(dates, r)[0], [], cfg)
    assert res.fold_records[0]["scaler"] == res2.fold_records[0]["scaler"]
    assert res2.fold_records[0]["scaler_fit_end"] == dates[last_t]


def test_persistence_uses_known_regime_not_the_hindsight_label():
    dates, X, names, r = synthetic()
    targets, regime, known = given_targets(dates, r, lag=10)
    res = walk_forward(dates, X, names, targets, [], TrainingConfig(window=W, horizon=H, max_folds=2))
    pers = res.oos_predictions.filter(pl.col("model") == "persistence")
    pos = {d: i for i, d in enumerate(dates)}
    t = np.array([pos[d] for d in pers["as_of"]])
    np.testing.assert_array_equal(pers["predicted_regime"].to_numpy(), known[t].astype(int))
    np.testing.assert_array_equal(pers["known_regime"].to_numpy(), known[t].astype(int))
    differs = known[t] != regime[t]
    assert differs.sum() > 5  # the case exists…
    # …and there persistence follows the known regime, not the hindsight label at t
    assert (pers["predicted_regime"].to_numpy()[differs] != regime[t][differs]).all()
    # true_regime is the label at t + h
    np.testing.assert_array_equal(pers["true_regime"].to_numpy(), regime[t + H].astype(int))

    # generated labels: the fold's ONLINE assignment, which differs from its hindsight path
    res = walk_forward(dates, X, names, refit_targets(dates, r), [], TrainingConfig(window=W, horizon=H, max_folds=1))
    pers = res.oos_predictions.filter(pl.col("model") == "persistence")
    np.testing.assert_array_equal(pers["predicted_regime"].to_numpy(), pers["known_regime"].to_numpy())
    rec = res.fold_records[0]
    labels = refit_targets(dates, r).fold_labels(rec["train_target_end"], rec["test_target_end"])
    t = np.array([pos[d] for d in pers["as_of"]])
    assert (labels.known_regime[t] != labels.test_regime[t]).sum() > 5
    np.testing.assert_array_equal(pers["known_regime"].to_numpy(), labels.known_regime[t])


def test_given_labels_with_lag():
    dates = weekdays(dt.date(2020, 1, 1), 6)
    g = GivenLabels.with_lag(dates, [0, 1, 1, 0, 2, 2], label_lag=2)
    assert g.known_regime.tolist() == [-1, -1, 0, 1, 1, 0] and g.n_classes == 3
    fl = g.fold_labels(dates[3])
    assert fl.fit_start is None and fl.fit_end is None and g.user_labels
    assert g.with_lag(dates, [0, 1, 1, 0, 2, 2]).known_regime.tolist() == [0, 1, 1, 0, 2, 2]


def test_refit_labels_fit_range_and_train_span_targets():
    dates, X, names, r = synthetic()
    targets = refit_targets(dates, r)
    end = dates[1200]
    fl = targets.fold_labels(end, dates[1500])
    assert isinstance(fl, FoldLabels) and fl.fit_end == end and fl.fit_start == dates[0]
    assert (fl.train_regime[1201:] == -1).all() and (fl.train_regime[100:1190] >= 0).all()
    assert (fl.test_regime[1501:] == -1).all() and (fl.test_regime[1200:1490] >= 0).all()
    # training targets come from the training span's fit alone; the test targets (the truth) from a labeler refit
    # through the test span (DESIGN §3a), which never reaches the inputs
    frame = pl.DataFrame({"date": dates, "r": r})
    train_fit = VolThresholdLabeler().fit(frame.head(1201))
    truth_fit = VolThresholdLabeler().fit(frame.head(1501))
    assert (fl.train_regime[:1201] == as_label_array(train_fit.predict(frame.head(1201)))).all()
    assert (fl.test_regime[:1501] == as_label_array(truth_fit.predict(frame.head(1501)))).all()
    assert (fl.known_regime[:1501] == as_label_array(train_fit.predict_online(frame.head(1501)))).all()
    assert fl.truth_fit_end == dates[1500] and truth_fit.threshold != train_fit.threshold


def test_single_split_and_class_balance_are_reported():
    dates, X, names, r = synthetic(n=700)
    targets, regime, known = given_targets(dates, r)
    res = walk_forward(dates, X, names, targets, ["logistic"], TrainingConfig(window=W, horizon=H))
    assert res.single_split and len(res.fold_records) == 1
    assert res.fold_records[0]["single_split"] is True
    assert "single chronological split" in res.summary()
    assert res.summary().count("labelled sessions is less than") == 1  # the note once, not again as a warning
    assert verify_fold_records(res.fold_records, dates) == []

    # a rare class warns, an absent class is recorded as an error (K = 3, regime 2 never in training)
    rare = regime.copy()
    rare[np.flatnonzero(rare == 1)[10:]] = 0  # regime 1 keeps its first 10 rows: under 5 % of training
    t2 = GivenLabels(dates, rare, rare, n_classes=3)
    res = walk_forward(dates, X, names, t2, ["logistic"], TrainingConfig(window=W, horizon=H))
    rec = res.fold_records[0]
    assert any("regime 2 has no training samples" in e for e in rec["class_errors"])
    assert any("regime 1" in w and "under 5 %" in w for w in rec["class_warnings"])
    probs = np.array(res.oos_predictions["probabilities"].to_list())
    assert probs.shape[1] == 3


def test_too_little_history_is_a_clear_error():
    dates, X, names, r = synthetic(n=310)  # 291 labelled sessions with complete features
    targets, *_ = given_targets(dates, r)
    with pytest.raises(ValueError, match="at least 300"):
        walk_forward(dates, X, names, targets, [], TrainingConfig(window=W, horizon=H))


def test_fit_final_versions_and_round_trip(tmp_path):
    dates, X, names, r = synthetic(n=900)
    prods = fit_final(dates, X, names, refit_targets(dates, r), {"cnn": FAST["cnn"], "logistic": {}},
                      TINY, fit_date=dt.date(2024, 5, 1))
    assert [p.name for p in prods] == ["cnn", "logistic", "majority", "persistence"]
    cnn = prods[0]
    assert cnn.model_version.startswith("cnn-2024-05-01-") and len(cnn.model_version.split("-")[-1]) == 8
    assert cnn.labeler_fit_end == dates[-1]  # production labeler: all labelled history
    assert cnn.scaler.fit_end <= cnn.train_end
    again = fit_final(dates, X, names, refit_targets(dates, r), {"cnn": FAST["cnn"]}, TINY, fit_date=dt.date(2024, 5, 1))
    assert again[0].model_version == cnn.model_version
    other = fit_final(dates[:-1], X[:-1], names, refit_targets(dates[:-1], r[:-1]), {"cnn": FAST["cnn"]}, TINY,
                      fit_date=dt.date(2024, 5, 1))
    assert other[0].model_version != cnn.model_version  # data range is in the hash
    p = cnn.forecast_last(X)
    cnn.save(tmp_path / "cnn")
    loaded = ProductionModel.load(tmp_path / "cnn")
    np.testing.assert_array_equal(loaded.forecast_last(X), p)
    assert loaded.model_version == cnn.model_version
    assert prods[3].forecast_last(X, known_regime_at_t=1).tolist() == [0.0, 1.0]


def test_a_revised_input_inside_the_span_is_another_model_version():
    """The version names the weights: the same data, settings and seed give the same version; one revised feature
    value in the middle of the span (a revised close, say) gives another, though range and settings are unchanged."""
    dates, X, names, r = synthetic(n=900)
    fit = lambda X: fit_final(dates, X, names, refit_targets(dates, r), ["logistic"], TINY,  # noqa: E731
                              include_baselines=False, fit_date=dt.date(2024, 5, 1))[0].model_version
    revised = X.copy()
    revised[450, 0] += 0.01
    assert fit(X) == fit(X.copy())
    assert fit(revised) != fit(X)


def test_a_save_that_dies_midway_leaves_the_previous_model_whole(tmp_path, monkeypatch):
    """A kill between the weights and the scaler used to leave new weights beside the old scaler and metadata, which
    loaded without complaint; now a model's files are one generation, made current only once all are written."""
    dates, X, names, r = synthetic(n=900)
    first = fit_final(dates, X, names, refit_targets(dates, r), ["logistic"], TINY, include_baselines=False)[0]
    second = fit_final(dates[:-60], X[:-60], names, refit_targets(dates[:-60], r[:-60]), ["logistic"], TINY,
                       include_baselines=False)[0]
    assert second.model_version != first.model_version
    first.save(tmp_path / "logistic")

    def dies(self, path):  # the process dies after the new weights and config are written
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(SessionScaler, "save", dies)
    with pytest.raises(KeyboardInterrupt):
        second.save(tmp_path / "logistic")
    monkeypatch.undo()
    loaded = ProductionModel.load(tmp_path / "logistic")
    assert loaded.model_version == first.model_version  # production.json, config, weights and scaler: all the first
    np.testing.assert_array_equal(loaded.forecast_last(X), first.forecast_last(X))
    assert loaded.scaler.fit_end == first.scaler.fit_end
    assert len(list((tmp_path / "logistic").glob("generation-*"))) == 1  # the half-written one is gone
    second.save(tmp_path / "logistic")  # and the next save completes
    assert ProductionModel.load(tmp_path / "logistic").model_version == second.model_version
    assert len(list((tmp_path / "logistic").glob("generation-*"))) == 2  # the second's and the first's, kept


def test_fold_records_round_trip_through_the_warehouse(tmp_path):
    """Stored with the rows in one transaction and read back: the same records, the same walk-forward digest."""
    dates, X, names, r = synthetic()
    res = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], TINY, include_baselines=False)
    records = res.fold_records_json()
    digest = fold_records.walk_forward_digest(records, res.oos_predictions)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        wh.replace_model_walk_forward(con, "SPY", "v1", "logistic", res.oos_predictions,
                                      fold_records.record_rows(records, digest))
        stored, stored_digest = fold_records.records_from_rows(wh.read_fold_records(con, "SPY", "v1", "logistic"))
        rows = wh.read_oos_predictions(con, "SPY", "v1", "logistic")
    assert stored == records and stored_digest == digest and isinstance(stored[0]["train_end"], str)
    assert fold_records.walk_forward_digest(stored, rows) == digest  # the rows read back digest as computed
    assert verify_fold_records(stored, dates) == []
    again = walk_forward(dates, X, names, refit_targets(dates, r), ["logistic"], TINY, include_baselines=False)
    assert fold_records.walk_forward_digest(again.fold_records_json(), again.oos_predictions) == digest  # no run time


def fit_size_problems(fold_records) -> list[str]:
    """Every model of every fold fit on all its fold's training samples, by the count its own fit measured (the rows
    scikit-learn received, the samples the torch loop iterated, the targets a baseline counted)."""
    return [f"fold {rec['fold']} {name}: fit on {info['n_fit']} of {rec['n_train']} training samples"
            for rec in fold_records for name, info in rec["models"].items() if info["n_fit"] != rec["n_train"]]


def test_models_fit_on_every_training_sample_and_sequence_models_refit_after_choosing_epochs():
    """Point 1 of the correctness issue: nothing fits on the span minus the early-stopping tail alone."""
    dates, X, names, r = synthetic()
    res = walk_forward(dates, X, names, refit_targets(dates, r), {"lstm": FAST["lstm"], "random_forest":
                       FAST["random_forest"], "logistic": {}}, TINY)
    assert fit_size_problems(res.fold_records) == []  # every training sample the embargo allows
    for rec in res.fold_records:
        assert rec["n_validation"] > 0 and rec["n_epoch_selection_fit"] < rec["n_train"] - rec["n_validation"]
        assert set(rec["models"]) == {"lstm", "random_forest", "logistic", "majority", "persistence"}
        lstm = rec["models"]["lstm"]
        assert lstm["n_epoch_selection_fit"] == rec["n_epoch_selection_fit"]  # the probe's own count
        assert 1 <= lstm["epochs_selected"] <= TINY.epochs and lstm["epochs"] == lstm["epochs_selected"]
        assert rec["models"]["random_forest"]["epochs_selected"] is None
    # the majority baseline's shares are those of the whole training span, not of the span minus its tail
    maj = fit_final(dates, X, names, refit_targets(dates, r), [], TINY)[0]
    counts = np.array([maj.class_counts[c] for c in range(2)], dtype=float)
    assert maj.name == "majority" and maj.model.fit_info["n_fit"] == counts.sum()
    np.testing.assert_allclose(maj.model.shares_, counts / counts.sum())


def test_the_fit_size_test_fails_when_the_final_fit_drops_the_tail(monkeypatch):
    """The old bug planted in the real training code — the returned model fit on the span minus its early-stopping
    tail — must fail ``fit_size_problems`` for every model: the count comes from the fit, not from the span."""
    monkeypatch.setattr(training, "final_fit_samples", lambda span: (span.fit_t, span.y_fit))
    dates, X, names, r = synthetic()
    res = walk_forward(dates, X, names, refit_targets(dates, r), {"lstm": FAST["lstm"], "random_forest":
                       FAST["random_forest"], "logistic": {}}, replace(TINY, max_folds=1))
    problems = fit_size_problems(res.fold_records)
    rec = res.fold_records[0]
    assert {p.split(": ")[0] for p in problems} == {f"fold {rec['fold']} {m}" for m in rec["models"]}, problems
    assert all(f"fit on {rec['n_epoch_selection_fit']} of {rec['n_train']}" in p for p in problems)


def test_a_class_present_only_in_the_tail_warns_and_does_not_crash():
    """Point 2: the balance rule judges exactly the fitted samples; a class only in the tail is no crash."""
    from regime_platform import calendar

    dates = calendar.sessions("2005-01-03", "2011-12-30")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(len(dates), 3))
    regime = np.zeros(len(dates), dtype=int)
    first_test = dates.index(dt.date(2011, 1, 3))
    regime[first_test - 150:first_test - 90] = 1  # regime 1 only inside the last fold's early-stopping tail
    regime[first_test + 20:first_test + 60] = 1
    targets = GivenLabels(dates, regime, regime)
    res = walk_forward(dates, X, ["a", "b", "c"], targets, ["logistic", ("cnn", FAST["cnn"])],
                       TrainingConfig(epochs=2, max_folds=1))
    rec = res.fold_records[-1]
    assert rec["class_counts"][1] > 0 and rec["models"]["logistic"]["n_fit"] == rec["n_train"]
    assert any("only in the early-stopping tail" in w for w in rec["class_warnings"])
    assert res.oos_predictions.height > 0


def test_a_training_span_with_one_regime_is_a_clear_error():
    from regime_platform import calendar

    dates = calendar.sessions("2005-01-03", "2012-12-31")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(len(dates), 3))
    regime = np.zeros(len(dates), dtype=int)
    regime[-100:] = 1  # the only change of regime comes after every training span
    targets = GivenLabels(dates, regime, regime)
    with pytest.raises(ValueError, match="every walk-forward fold was skipped.*no classifier can learn from one "
                                         "class.*REGIME_START"):
        walk_forward(dates, X, ["a", "b", "c"], targets, ["logistic"], TrainingConfig(epochs=1, max_folds=1))
    # a fold with one regime is skipped with a warning; later folds that have both still run
    regime[dates.index(dt.date(2011, 3, 1)):dates.index(dt.date(2011, 5, 2))] = 1
    res = walk_forward(dates, X, ["a", "b", "c"], GivenLabels(dates, regime, regime), ["logistic"],
                       TrainingConfig(epochs=1, max_folds=2))
    assert [r["test_year"] for r in res.fold_records] == [2012]
    assert any("fold" in w and "(2011)" in w and "skipped" in w for w in res.warnings)


def test_a_person_waiting_reads_one_line_per_fold_and_model_and_the_steps_are_at_debug():
    """Through a two-level log like the model assets' (INFO, DEBUG): INFO holds one summary per fold and model, each
    saying what the fold's tail chose, and one per production fit; the train span, the inner choice, the epochs chosen,
    the temperature and every epoch are at DEBUG."""
    from regime_platform.models.base import LeveledLog

    dates, X, names, r = synthetic()
    models = {"cnn": FAST["cnn"], "logistic": {}}
    info, debug = [], []
    config = replace(TINY, tune_capacity=True, min_dwell=0)
    walk_forward(dates, X, names, refit_targets(dates, r), models, config, log=LeveledLog(info.append, debug.append),
                 include_baselines=False)
    assert len(info) == 2 * len(models), info
    for line in info:
        assert line.startswith("fold ") and "fit on " in line and ", dwell " in line and line.endswith(" s"), line
        assert ", capacity " in line and "temperature" in line, line
    assert any(" cnn: " in line and " epochs, " in line for line in info)
    assert any("inner validation chose" in line for line in debug) and any("epoch 1/2" in line for line in debug)
    assert any("epochs chosen on the" in line for line in debug) and any(": train " in line for line in debug)
    targets = refit_targets(dates, r)
    info.clear()
    fit_final(dates, X, names, targets, models, config, log=LeveledLog(info.append, debug.append),
              include_baselines=False)
    assert [line.split(":")[0] for line in info] == ["production fit cnn", "production fit logistic"], info
