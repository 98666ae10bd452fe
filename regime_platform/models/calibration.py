"""Temperature scaling of a model's probabilities, fit on the training span's embargoed tail (REGIME_CALIBRATION).

A model whose probabilities say 0.9 should be right about nine times in ten. Class weighting and small training
spans make models over- or under-confident, and an average of models (the ensemble) is only meaningful when each
member's probabilities mean the same thing. Temperature scaling fits one number T on held-out predictions:
p_k ∝ p_k^(1/T). It never changes which regime is most likely (the argmax, hence a single model's decisions), only
how sure the model says it is; one parameter is all a tail of one or two years can estimate without overfitting.

Fit on the tail's probabilities of a probe model trained on the samples before the tail (the same split the LSTM
and CNN choose their epochs on), by minimizing the tail's log loss over T in [0.05, 20]. A tail that holds one
regime only cannot tell confidence from luck (every T < 1 looks better), so T stays 1 there and the record says
why. Pure numpy/scipy, no Dagster.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

T_BOUNDS = (0.05, 20.0)
_EPS = 1e-12


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """p_k^(1/T), renormalized per row; a zero probability stays zero; T = 1 returns the input unchanged."""
    proba = np.asarray(proba, dtype=np.float64)
    if temperature == 1.0 or proba.size == 0:
        return proba
    with np.errstate(divide="ignore"):
        logp = np.where(proba > 0, np.log(np.clip(proba, _EPS, None)), -np.inf) / float(temperature)
    logp -= logp.max(axis=1, keepdims=True)
    out = np.exp(logp)
    return out / out.sum(axis=1, keepdims=True)


def log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(np.asarray(proba, dtype=np.float64)[np.arange(len(y)), np.asarray(y, dtype=np.int64)], _EPS, 1.0)
    return float(-np.mean(np.log(p)))


@dataclass
class Calibration:
    temperature: float
    n_validation: int
    log_loss_before: float | None
    log_loss_after: float | None
    note: str = ""
    # the samples whose probabilities the temperature was fit on, as the caller read them (first, last, how many);
    # no_leakage checks they lie inside the training span's validation tail
    rows_start: Any = None
    rows_end: Any = None
    n_rows: int = 0

    def record(self) -> dict[str, Any]:
        return {"method": "temperature", "temperature": self.temperature, "n_validation": self.n_validation,
                "tail_log_loss_before": self.log_loss_before, "tail_log_loss_after": self.log_loss_after,
                "note": self.note, "rows_start": self.rows_start, "rows_end": self.rows_end, "n_rows": self.n_rows}


def fit_temperature(proba: np.ndarray, y: np.ndarray) -> Calibration:
    """The temperature that minimizes the log loss of ``proba`` (n, K) against ``y`` (n,) — see the module docstring."""
    proba, y = np.asarray(proba, dtype=np.float64), np.asarray(y, dtype=np.int64)
    if y.size == 0:
        return Calibration(1.0, 0, None, None, "no validation tail: probabilities left as the model gives them")
    before = log_loss(proba, y)
    if np.unique(y).size < 2:
        return Calibration(1.0, int(y.size), round(before, 6), round(before, 6),
                           f"the tail holds regime {int(y[0])} only: temperature left at 1")
    res = minimize_scalar(lambda logt: log_loss(apply_temperature(proba, float(np.exp(logt))), y),
                          bounds=tuple(np.log(T_BOUNDS)), method="bounded", options={"xatol": 1e-4})
    t = float(np.exp(res.x))
    after = log_loss(apply_temperature(proba, t), y)
    if after >= before:  # the optimizer found nothing better than leaving the model alone
        return Calibration(1.0, int(y.size), round(before, 6), round(before, 6), "no temperature lowered the tail's log loss")
    return Calibration(round(t, 6), int(y.size), round(before, 6), round(after, 6))
