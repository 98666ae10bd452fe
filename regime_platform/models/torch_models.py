"""Sequence models in PyTorch (CPU): ``lstm`` and ``cnn`` (1-D convolution over time).

Training: Adam, class-weighted cross-entropy by default (sklearn's "balanced" weights computed on the
rows actually fitted, i.e. after any oversampling), mini-batches in a seeded order, gradient clipping,
early stopping on the validation tail's loss (``patience`` epochs without improvement ≥ 1e-4; the best
epoch's weights are restored), at most ``epochs`` epochs. Without a validation tail it trains exactly
``epochs`` epochs. ``log`` (optional) is called once per epoch with the epoch, train loss, validation loss
and validation macro-F1.

Determinism: ``torch.manual_seed(seed)`` and a numpy ``default_rng(seed)`` for batch order at the start of
every fit, CPU only, ``torch.set_num_threads(os.cpu_count())``; same inputs → same weights (for a fixed
thread count).

Saved as ``model.pt`` (the ``state_dict`` only) + ``config.json``; loaded with
``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn

from regime_platform.models.base import RegimeModel, balanced_class_weights, detail, oversample
from regime_platform.storage.files import write_bytes_atomic

STATE_FILE = "model.pt"

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


class LSTMNet(nn.Module):
    def __init__(self, n_features: int, n_classes: int, hidden: int = 48, dropout: float = 0.2) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, num_layers=1, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        return self.head(self.drop(h[-1]))


class CNNNet(nn.Module):
    """Two Conv1d layers over time, then global average and max pooling, dropout, linear head."""

    def __init__(
        self, n_features: int, n_classes: int, channels: int = 32, kernel_size: int = 5, dropout: float = 0.2
    ) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(n_features, channels, kernel_size, padding=pad)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, padding=pad)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.transpose(1, 2)  # (n, features, time)
        z = self.act(self.conv1(z))
        z = self.act(self.conv2(z))
        pooled = torch.cat([z.mean(dim=2), z.amax(dim=2)], dim=1)
        return self.head(self.drop(pooled))


class _TorchModel(RegimeModel):
    kind = "pytorch"
    early_stopping = True

    def _build(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit(self, X, y, X_val, y_val, log) -> None:
        p = self.params
        torch.set_num_threads(os.cpu_count() or 1)
        torch.manual_seed(p["seed"])
        rng = np.random.default_rng(p["seed"])
        K = self.n_classes

        Xf, yf = oversample(X, y, p["oversampling"], p["seed"], log)
        n_oversampled = int(len(yf) - len(y))
        if p["class_weighting"]:
            w = balanced_class_weights(yf, K)
            w[w == 0] = 1.0  # a class absent from training: weight irrelevant there, keeps val loss finite
        else:
            w = np.ones(K)
        loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=torch.float32))

        self.net_ = self._build()
        opt = torch.optim.Adam(self.net_.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        Xt, yt = torch.from_numpy(np.ascontiguousarray(Xf, dtype=np.float32)), torch.from_numpy(yf)
        has_val = X_val is not None and len(X_val) > 0
        if has_val:
            Xv, yv = torch.from_numpy(np.ascontiguousarray(X_val, dtype=np.float32)), torch.from_numpy(y_val)

        n, bs = len(yf), int(p["batch_size"])
        best_loss, best_epoch, best_state, bad = math.inf, 0, None, 0
        history: list[dict] = []
        seen = 0  # samples the last epoch iterated: what the training records read as the fit size
        for epoch in range(1, int(p["epochs"]) + 1):
            self.net_.train()
            order = rng.permutation(n)
            total, seen = 0.0, 0
            for start in range(0, n, bs):
                b = torch.from_numpy(order[start : start + bs])
                opt.zero_grad()
                loss = loss_fn(self.net_(Xt[b]), yt[b])
                loss.backward()
                if p["grad_clip"]:
                    nn.utils.clip_grad_norm_(self.net_.parameters(), p["grad_clip"])
                opt.step()
                total += float(loss.item()) * len(b)
                seen += len(b)
            train_loss = total / n
            entry = {"epoch": epoch, "train_loss": train_loss}
            if has_val:
                self.net_.eval()
                with torch.no_grad():
                    logits = self.net_(Xv)
                    val_loss = float(loss_fn(logits, yv).item())
                    pred = logits.argmax(dim=1).numpy()
                val_f1 = float(f1_score(y_val, pred, labels=list(range(K)), average="macro", zero_division=0))
                entry.update(val_loss=val_loss, val_macro_f1=val_f1)
                if val_loss < best_loss - 1e-4:
                    best_loss, best_epoch, bad = val_loss, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in self.net_.state_dict().items()}
                else:
                    bad += 1
            history.append(entry)
            if log:  # per epoch: at DEBUG when the log has levels (fold summaries stay at INFO)
                msg = f"epoch {epoch}/{p['epochs']}: train loss {train_loss:.4f}"
                if has_val:
                    msg += f", val loss {entry['val_loss']:.4f}, val macro-F1 {entry['val_macro_f1']:.3f}"
                detail(log)(msg)
            if has_val and bad >= int(p["patience"]):
                break
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        self.net_.eval()
        self.fit_info.update(
            epochs=len(history),
            best_epoch=best_epoch if has_val else len(history),
            best_val_loss=None if not has_val else best_loss,
            early_stopped=bool(has_val and len(history) < int(p["epochs"])),
            class_weights=[float(v) for v in w],
            history=history,
            n_fit_rows=seen,
            n_oversampled=n_oversampled,
        )

    def _predict_proba(self, X, known_regime) -> np.ndarray:
        self.net_.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(X), 1024):
                xb = torch.from_numpy(np.ascontiguousarray(X[start : start + 1024], dtype=np.float32))
                out.append(torch.softmax(self.net_(xb).double(), dim=1).numpy())  # float64: rows sum to 1
        if not out:
            return np.zeros((0, self.n_classes))
        return np.concatenate(out, axis=0)

    def _save_state(self, directory: Path) -> list[Path]:
        # serialized in memory, then written atomically: torch.save names the archive's root folder after the file it
        # writes to, and the temporary name is random, so saving straight to it gave different bytes (and a different
        # recorded SHA-256) for the same weights every time
        buffer = io.BytesIO()
        torch.save(self.net_.state_dict(), buffer)
        return [write_bytes_atomic(directory / STATE_FILE, buffer.getvalue())]

    def _load_state(self, directory: Path, cfg: dict) -> None:
        self.net_ = self._build()
        state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=True)
        self.net_.load_state_dict(state)
        self.net_.eval()


class LSTMModel(_TorchModel):
    name = "lstm"
    defaults = {**_COMMON, "hidden": 48}

    def _build(self) -> nn.Module:
        return LSTMNet(self.n_features, self.n_classes, hidden=self.params["hidden"], dropout=self.params["dropout"])


class CNNModel(_TorchModel):
    name = "cnn"
    defaults = {**_COMMON, "channels": 32, "kernel_size": 5}

    def _build(self) -> nn.Module:
        p = self.params
        return CNNNet(
            self.n_features, self.n_classes, channels=p["channels"], kernel_size=p["kernel_size"], dropout=p["dropout"]
        )
