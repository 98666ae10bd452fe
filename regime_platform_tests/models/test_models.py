import numpy as np
import pytest
from sklearn.metrics import f1_score

from regime_platform.models import MODELS, load_model, make_model
from regime_platform.models.base import balanced_class_weights, oversample

FAST = {"lstm": {"epochs": 2, "hidden": 16}, "cnn": {"epochs": 2, "channels": 8}, "random_forest": {"n_estimators": 30},
        "gradient_boosting": {"max_iter": 50}}


def _data(n=600, w=10, f=4, minority=0.3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, w, f)).astype(np.float32)
    score = X[:, -1, 0] + X[:, :, 1].mean(axis=1) + 0.5 * rng.normal(size=n)
    y = (score > np.quantile(score, 1 - minority)).astype(np.int64)
    return X, y


@pytest.mark.parametrize("name", list(MODELS))
def test_save_load_round_trip_gives_identical_probabilities(name, tmp_path):
    X, y = _data()
    known = y[::-1].copy()
    model = make_model(name, **FAST.get(name, {}))
    model.fit(X[:450], y[:450], n_classes=3, X_val=X[450:500], y_val=y[450:500])
    p = model.predict_proba(X[500:], known_regime=known[500:])
    assert p.shape == (100, 3)  # class 2 never seen: still a column
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    files = model.save(tmp_path / name)
    assert all(f.exists() for f in files)
    assert not list((tmp_path / name).glob("*.tmp"))  # atomic writes leave no temp files
    assert not any(f.suffix in {".pkl", ".joblib", ".pickle"} for f in files)
    loaded = load_model(tmp_path / name)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict_proba(X[500:], known_regime=known[500:]), p)
    # also through the class itself
    again = MODELS[name].load(tmp_path / name)
    np.testing.assert_array_equal(again.predict_proba(X[500:], known_regime=known[500:]), p)


@pytest.mark.parametrize("name, damage", [
    ("logistic", "truncate"), ("lstm", "truncate"), ("logistic", "tamper"), ("lstm", "tamper"), ("logistic", "config"),
])
def test_a_truncated_or_tampered_model_file_is_refused_in_one_sentence(name, damage, tmp_path):
    X, y = _data(n=200)
    model = make_model(name, **FAST.get(name, {})).fit(X[:150], y[:150], n_classes=2, X_val=X[150:], y_val=y[150:])
    files = model.save(tmp_path / name)
    state = next(f for f in files if f.name != "config.json")
    if damage == "truncate":
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    elif damage == "tamper":
        data = bytearray(state.read_bytes())
        data[len(data) // 3: len(data) // 3 + 64] = b"\x00" * 64
        state.write_bytes(bytes(data))
    else:
        (tmp_path / name / "config.json").write_text('{"name": "logistic", "params": ')
    with pytest.raises(ValueError) as refused:
        load_model(tmp_path / name)
    said = str(refused.value)
    name = "saved" if damage == "config" else name  # the config names the model: without it, which is unknown
    assert said.startswith(f"the {name} model in {state.parent} cannot be loaded, its files are damaged, "
                           "tampered with or of another model (") and said.endswith("re-materialize its asset to "
                                                                                    "write it afresh.")
    assert "\n" not in said


def test_torch_models_log_each_epoch_and_stop_early():
    X, y = _data()
    lines = []
    m = make_model("lstm", epochs=3, hidden=16).fit(X[:450], y[:450], n_classes=2, X_val=X[450:], y_val=y[450:], log=lines.append)
    assert len(lines) == m.fit_info["epochs"] == 3
    assert all("train loss" in s and "val loss" in s and "macro-F1" in s for s in lines)
    # patience 1 and a high learning rate: stops well before max epochs once the val loss stalls
    m = make_model("cnn", epochs=60, patience=1, channels=8, lr=0.05).fit(
        X[:450], y[:450], n_classes=2, X_val=X[450:], y_val=y[450:]
    )
    assert m.fit_info["epochs"] < 60 and m.fit_info["early_stopped"]


def test_epoch_lines_go_to_debug_when_the_log_has_levels():
    """What the model assets pass (LeveledLog(context.log.info, context.log.debug)): a person waiting sees the fold
    summaries at INFO, not 30 epoch lines per fit; the epochs are there at DEBUG."""
    from regime_platform.modeling.training import prefixed
    from regime_platform.models.base import LeveledLog

    X, y = _data()
    info, debug = [], []
    log = prefixed(LeveledLog(info.append, debug.append), "fold 3 lstm")
    make_model("lstm", epochs=2, hidden=16).fit(X[:450], y[:450], n_classes=2, X_val=X[450:], y_val=y[450:], log=log)
    assert info == [] and len(debug) == 2 and all(s.startswith("fold 3 lstm: epoch ") for s in debug)
    log("fit on 450 samples")
    assert info == ["fold 3 lstm: fit on 450 samples"]


def test_torch_training_is_deterministic():
    X, y = _data()
    p1 = make_model("cnn", epochs=2, channels=8).fit(X[:450], y[:450], n_classes=2).predict_proba(X[450:])
    p2 = make_model("cnn", epochs=2, channels=8).fit(X[:450], y[:450], n_classes=2).predict_proba(X[450:])
    np.testing.assert_array_equal(p1, p2)


def test_persistence_predicts_the_known_regime():
    X, y = _data()
    m = make_model("persistence").fit(X[:400], y[:400], n_classes=2)
    known = np.array([1, 0, -1, 1])
    p = m.predict_proba(X[:4], known_regime=known)
    assert p[0].tolist() == [0.0, 1.0] and p[1].tolist() == [1.0, 0.0] and p[3].tolist() == [0.0, 1.0]
    np.testing.assert_allclose(p[2], np.bincount(y[:400]) / 400)  # unknown → training shares
    with pytest.raises(ValueError, match="known_regime"):
        m.predict_proba(X[:4])


def test_majority_gives_training_shares():
    X, y = _data(minority=0.2)
    m = make_model("majority").fit(X, y, n_classes=2)
    p = m.predict_proba(X[:3])
    np.testing.assert_allclose(p[0], [0.8, 0.2], atol=0.01)
    assert (p.argmax(axis=1) == 0).all()


@pytest.mark.parametrize("name", ["random_forest", "gradient_boosting", "logistic"])
def test_class_weighted_defaults_find_the_minority_class(name):
    X, y = _data(n=1500, minority=0.1, seed=1)
    tr, te = slice(0, 1000), slice(1000, None)
    base = make_model("majority").fit(X[tr], y[tr], n_classes=2).predict(X[te])
    base_f1 = f1_score(y[te], base, average="macro", zero_division=0)
    pred = make_model(name, **FAST.get(name, {})).fit(X[tr], y[tr], n_classes=2).predict(X[te])
    f1 = f1_score(y[te], pred, average="macro", zero_division=0)
    assert (pred == 1).sum() > 0
    assert f1 > base_f1 + 0.1, (f1, base_f1)


@pytest.mark.parametrize("method", ["random", "smote"])
def test_oversampling_balances_and_keeps_window_shape(method):
    X, y = _data(n=300, minority=0.1)
    Xr, yr, _ = oversample(X, y, None, method, seed=0)
    assert Xr.shape[1:] == X.shape[1:]
    assert np.bincount(yr)[0] == np.bincount(yr)[1]
    m = make_model("lstm", epochs=1, hidden=8, oversampling=method).fit(X, y, n_classes=2)
    assert m.predict_proba(X[:5]).shape == (5, 2)


def test_balanced_weights_and_parameter_validation():
    w = balanced_class_weights(np.array([0, 0, 0, 1]), 3)
    np.testing.assert_allclose(w, [4 / 6, 2.0, 0.0])
    with pytest.raises(TypeError, match="unknown parameter"):
        make_model("logistic", epochs=3)
    with pytest.raises(ValueError, match="oversampling"):
        make_model("lstm", oversampling="adasyn")
    with pytest.raises(ValueError, match="unknown model"):
        make_model("xgboost")


def test_gradient_boosting_is_deterministic_and_keeps_to_its_threads():
    """Seeded and single-threaded by default: two fits give the same probabilities bit for bit, and the fit's OpenMP
    limit does not leak into the caller."""
    from threadpoolctl import threadpool_info

    before = {i["internal_api"]: i["num_threads"] for i in threadpool_info()}
    X, y = _data(n=800, minority=0.2, seed=4)
    fits = [make_model("gradient_boosting", seed=5).fit(X[:600], y[:600], n_classes=2) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].predict_proba(X[600:]), fits[1].predict_proba(X[600:]))
    assert fits[0].estimator_.get_params()["random_state"] == 5
    assert fits[0].estimator_.get_params()["early_stopping"] is False
    assert {i["internal_api"]: i["num_threads"] for i in threadpool_info()} == before
