"""Regime models behind one interface (:class:`RegimeModel`) and a registry.

A new model is one class (subclass :class:`RegimeModel`, set ``name`` and ``defaults``) plus one line
in ``MODELS``. ``make_model(name, **params)`` builds one; ``load_model(directory)`` reads ``config.json``
and dispatches to the right class.
"""
from __future__ import annotations

from pathlib import Path

from regime_platform.artifacts import read_json
from regime_platform.models.base import CONFIG_FILE, OVERSAMPLING, RegimeModel
from regime_platform.models.baselines import MajorityModel, PersistenceModel
from regime_platform.models.ensemble import EnsembleModel
from regime_platform.models.sklearn_models import LogisticModel, RandomForestModel, summarize_windows
from regime_platform.models.torch_models import CNNModel, LSTMModel

MODELS: dict[str, type[RegimeModel]] = {
    "lstm": LSTMModel,
    "cnn": CNNModel,
    "random_forest": RandomForestModel,
    "logistic": LogisticModel,
    "ensemble": EnsembleModel,
    "majority": MajorityModel,
    "persistence": PersistenceModel,
}

BASELINES = tuple(name for name, cls in MODELS.items() if cls.is_baseline)


def make_model(name: str, **params) -> RegimeModel:
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(MODELS)}") from None
    return cls(**params)


def accepted_params(name: str, params: dict) -> dict:
    """The subset of ``params`` that model ``name`` accepts (used to pass shared training settings)."""
    return {k: v for k, v in params.items() if k in MODELS[name].defaults}


def load_model(directory: str | Path) -> RegimeModel:
    cfg = read_json(Path(directory) / CONFIG_FILE)
    return MODELS[cfg["name"]].load(Path(directory))


__all__ = [
    "BASELINES",
    "MODELS",
    "OVERSAMPLING",
    "CNNModel",
    "EnsembleModel",
    "LSTMModel",
    "LogisticModel",
    "MajorityModel",
    "PersistenceModel",
    "RandomForestModel",
    "RegimeModel",
    "accepted_params",
    "load_model",
    "make_model",
    "summarize_windows",
]
