"""The model registry: every model class by name, declared once in :mod:`regime_platform.models` (its ``MODELS``
order is the order models appear everywhere: assets, tables, reports), and the helpers that build or load one."""
from __future__ import annotations

from pathlib import Path

from regime_platform.models.base import CONFIG_FILE, RegimeModel, damaged
from regime_platform.storage.files import read_json

MODELS: dict[str, type[RegimeModel]] = {}  # filled by regime_platform.models, in declaration order


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
    try:
        cls = MODELS[read_json(Path(directory) / CONFIG_FILE)["name"]]
    except Exception as exc:
        raise damaged("saved", Path(directory), exc) from exc
    return cls.load(Path(directory))
