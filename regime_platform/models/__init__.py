"""Regime models behind one interface (:class:`RegimeModel`) and a registry.

A new model is one class (subclass :class:`RegimeModel`, set ``name``, ``kind`` and ``defaults``) plus one line
in ``MODELS`` below (the registry, :mod:`regime_platform.models.registry`, holds it). ``make_model(name, **params)`` builds one; ``load_model(directory)`` reads ``config.json``
and dispatches to the right class.
"""
from __future__ import annotations

from regime_platform.models.base import OVERSAMPLING, RegimeModel
from regime_platform.models.baselines import MajorityModel, PersistenceModel
from regime_platform.models.ensemble import EnsembleModel
from regime_platform.models.registry import MODELS, accepted_params, load_model, make_model
from regime_platform.models.sklearn_models import (
    GradientBoostingModel,
    LogisticModel,
    RandomForestModel,
    summarize_windows,
)
from regime_platform.models.torch_models import CNNModel, LSTMModel

MODELS.update({
    "lstm": LSTMModel,
    "cnn": CNNModel,
    "random_forest": RandomForestModel,
    "gradient_boosting": GradientBoostingModel,
    "logistic": LogisticModel,
    "ensemble": EnsembleModel,
    "majority": MajorityModel,
    "persistence": PersistenceModel,
})

BASELINES = tuple(name for name, cls in MODELS.items() if cls.is_baseline)


__all__ = [
    "BASELINES",
    "MODELS",
    "OVERSAMPLING",
    "CNNModel",
    "EnsembleModel",
    "GradientBoostingModel",
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
