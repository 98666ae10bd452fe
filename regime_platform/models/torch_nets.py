"""The PyTorch half of the sequence models: the networks and their fit, predict, save and load.

Imported by :mod:`regime_platform.models.torch_models` only when a sequence model is fit, asked or loaded, so loading
the definitions (every Dagster process, the CLI) does not import torch (about 2 s on 2 cores).
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

from regime_platform.models.base import balanced_class_weights, detail, oversample
from regime_platform.storage.files import write_bytes_atomic

STATE_FILE = "model.pt"


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



def fit(model, X, y, X_val, y_val, log, sample_weight=None) -> None:
    """Fit ``model.net_`` (built by ``model._build()``) and record what the fit did in ``model.fit_info``.

    With ``sample_weight`` (one per row of ``X``, carried through random oversampling) a batch's training loss is
    Σ s_i·c_{y_i}·ℓ_i / Σ s_i·c_{y_i} (s the sample weights, c the class weights, ℓ the cross-entropy): the class-weighted
    mean generalised; the validation loss stays class-weighted only."""
    p = model.params
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(p["seed"])
    rng = np.random.default_rng(p["seed"])
    K = model.n_classes

    Xf, yf, sample_weight = oversample(X, y, sample_weight, p["oversampling"], p["seed"], log)
    n_oversampled = int(len(yf) - len(y))
    if p["class_weighting"]:
        w = balanced_class_weights(yf, K)
        w[w == 0] = 1.0  # a class absent from training: weight irrelevant there, keeps val loss finite
    else:
        w = np.ones(K)
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=torch.float32))
    train_loss_fn = loss_fn
    if sample_weight is not None:
        class_w = torch.tensor(w, dtype=torch.float32)
        per_sample = nn.CrossEntropyLoss(weight=class_w, reduction="none")  # c_{y_i}·ℓ_i
        st = torch.from_numpy(np.asarray(sample_weight, dtype=np.float32))

        def train_loss_fn(logits, yb, b):
            return (per_sample(logits, yb) * st[b]).sum() / (class_w[yb] * st[b]).sum()

    model.net_ = model._build()
    opt = torch.optim.Adam(model.net_.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    Xt, yt = torch.from_numpy(np.ascontiguousarray(Xf, dtype=np.float32)), torch.from_numpy(yf)
    has_val = X_val is not None and len(X_val) > 0
    if has_val:
        Xv, yv = torch.from_numpy(np.ascontiguousarray(X_val, dtype=np.float32)), torch.from_numpy(y_val)

    n, bs = len(yf), int(p["batch_size"])
    best_loss, best_epoch, best_state, bad = math.inf, 0, None, 0
    history: list[dict] = []
    seen = 0  # samples the last epoch iterated: what the training records read as the fit size
    for epoch in range(1, int(p["epochs"]) + 1):
        model.net_.train()
        order = rng.permutation(n)
        total, seen = 0.0, 0
        for start in range(0, n, bs):
            b = torch.from_numpy(order[start : start + bs])
            opt.zero_grad()
            loss = (loss_fn(model.net_(Xt[b]), yt[b]) if sample_weight is None
                    else train_loss_fn(model.net_(Xt[b]), yt[b], b))
            loss.backward()
            if p["grad_clip"]:
                nn.utils.clip_grad_norm_(model.net_.parameters(), p["grad_clip"])
            opt.step()
            total += float(loss.item()) * len(b)
            seen += len(b)
        train_loss = total / n
        entry = {"epoch": epoch, "train_loss": train_loss}
        if has_val:
            model.net_.eval()
            with torch.no_grad():
                logits = model.net_(Xv)
                val_loss = float(loss_fn(logits, yv).item())
                pred = logits.argmax(dim=1).numpy()
            val_f1 = float(f1_score(y_val, pred, labels=list(range(K)), average="macro", zero_division=0))
            entry.update(val_loss=val_loss, val_macro_f1=val_f1)
            if val_loss < best_loss - 1e-4:
                best_loss, best_epoch, bad = val_loss, epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.net_.state_dict().items()}
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
        model.net_.load_state_dict(best_state)
    model.net_.eval()
    model.fit_info.update(
        epochs=len(history),
        best_epoch=best_epoch if has_val else len(history),
        best_val_loss=None if not has_val else best_loss,
        early_stopped=bool(has_val and len(history) < int(p["epochs"])),
        class_weights=[float(v) for v in w],
        history=history,
        n_fit_rows=seen,
        n_oversampled=n_oversampled,
    )


def predict_proba(model, X) -> np.ndarray:
    model.net_.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(X), 1024):
            xb = torch.from_numpy(np.ascontiguousarray(X[start : start + 1024], dtype=np.float32))
            out.append(torch.softmax(model.net_(xb).double(), dim=1).numpy())  # float64: rows sum to 1
    if not out:
        return np.zeros((0, model.n_classes))
    return np.concatenate(out, axis=0)


def save_state(model, directory: Path) -> list[Path]:
    # serialized in memory, then written atomically: torch.save names the archive's root folder after the file it
    # writes to, and the temporary name is random, so saving straight to it gave different bytes (and a different
    # recorded SHA-256) for the same weights every time
    buffer = io.BytesIO()
    torch.save(model.net_.state_dict(), buffer)
    return [write_bytes_atomic(directory / STATE_FILE, buffer.getvalue())]


def load_state(model, directory: Path) -> None:
    model.net_ = model._build()
    state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=True)
    model.net_.load_state_dict(state)
    model.net_.eval()


