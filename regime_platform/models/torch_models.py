"""Sequence models in PyTorch (CPU): ``lstm`` and ``cnn`` (1-D convolution over time).

Training: Adam, class-weighted cross-entropy by default (sklearn's "balanced" weights computed on the
rows actually fitted, i.e. after any oversampling; with ``sample_weight`` each sample's class-weighted loss is scaled
by its weight and a batch's loss is divided by the sum of its samples' combined weights), mini-batches in a seeded order, gradient clipping,
early stopping on the validation tail's loss (``patience`` epochs without improvement ≥ 1e-4; the best
epoch's weights are restored), at most ``epochs`` epochs. Without a validation tail it trains exactly
``epochs`` epochs. ``log`` (optional) is called once per epoch with the epoch, train loss, validation loss
and validation macro-F1.

Determinism: ``torch.manual_seed(seed)`` and a numpy ``default_rng(seed)`` for batch order at the start of
every fit, CPU only, ``torch.set_num_threads(os.cpu_count())``; same inputs → same weights (for a fixed
thread count).

Saved as ``model.pt`` (the ``state_dict`` only) + ``config.json``; loaded with
``torch.load(..., weights_only=True)``.

The networks and the torch code are in :mod:`regime_platform.models.torch_nets`, imported when a model is built, fit
or loaded: declaring the models (the registry, the definitions) imports no torch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from regime_platform.models.base import RegimeModel

_COMMON = {
    "class_weighting": True,
    "oversampling": "none",
    "seed": 0,
    "epochs": 30,
    "patience": 5,
    "batch_size": 64,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "dropout": 0.2,
    "grad_clip": 1.0,
}


class _TorchModel(RegimeModel):
    kind = "pytorch"
    early_stopping = True

    def _build(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit(self, X, y, X_val, y_val, log, sample_weight=None) -> None:
        from regime_platform.models import torch_nets

        torch_nets.fit(self, X, y, X_val, y_val, log, sample_weight)

    def _predict_proba(self, X, known_regime) -> np.ndarray:
        from regime_platform.models import torch_nets

        return torch_nets.predict_proba(self, X)

    def _save_state(self, directory: Path) -> list[Path]:
        from regime_platform.models import torch_nets

        return torch_nets.save_state(self, directory)

    def _load_state(self, directory: Path, cfg: dict) -> None:
        from regime_platform.models import torch_nets

        torch_nets.load_state(self, directory)


class LSTMModel(_TorchModel):
    name = "lstm"
    defaults = {**_COMMON, "hidden": 48}

    def _build(self):
        from regime_platform.models.torch_nets import LSTMNet

        return LSTMNet(self.n_features, self.n_classes, hidden=self.params["hidden"], dropout=self.params["dropout"])


class CNNModel(_TorchModel):
    name = "cnn"
    defaults = {**_COMMON, "channels": 32, "kernel_size": 5}

    def _build(self):
        from regime_platform.models.torch_nets import CNNNet

        p = self.params
        return CNNNet(
            self.n_features, self.n_classes, channels=p["channels"], kernel_size=p["kernel_size"], dropout=p["dropout"]
        )
