"""The one class-balance rule, for stored labels and for the samples a model is fit on.

For regime ids 0 … K−1 (K = the labeler's configured number of regimes, or a user's declared ids): an id
with no rows is a *missing* class (an error for stored labels; for a fold, a warning and the documented
outcome below), an id under ``MINORITY_SHARE`` of the rows is *rare* (a warning).

Outcome in a walk-forward fold (see :mod:`regime_platform.modeling.walk_forward`): a regime missing from the samples
a model fits on cannot be learned there — the fold still trains on the regimes present, scikit-learn
models and the baselines give the missing regime probability 0 and the sequence models learn to avoid it;
a fold whose fitted samples hold a single regime is skipped with a warning, since no classifier can learn
from one class.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MINORITY_SHARE = 0.05


@dataclass(frozen=True)
class ClassBalance:
    counts: dict[int, int]
    n_classes: int

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def shares(self) -> dict[int, float]:
        total = max(1, self.total)
        return {c: k / total for c, k in self.counts.items()}

    @property
    def missing(self) -> list[int]:
        return [c for c, k in self.counts.items() if k == 0]

    @property
    def rare(self) -> list[int]:
        return [c for c, s in self.shares.items() if 0 < s < MINORITY_SHARE]

    @property
    def present(self) -> list[int]:
        return [c for c, k in self.counts.items() if k > 0]

    def problems(self, where: str, rows: str = "rows") -> tuple[list[str], list[str]]:
        """``(warnings, errors)`` as sentences that name ``where`` (a fold, a table, a file)."""
        warnings = [f"{where}: regime {c} is {self.shares[c]:.1%} of {rows} ({self.counts[c]} of {self.total}), "
                    f"under {MINORITY_SHARE * 100:g} %" for c in self.rare]
        errors = [f"{where}: regime {c} has no {rows}" for c in self.missing]
        return warnings, errors


def class_balance(regimes: Sequence[int] | np.ndarray, n_classes: int) -> ClassBalance:
    """Counts per id 0 … n_classes−1 of ``regimes`` (negative values = no label, ignored)."""
    values = np.asarray(regimes.to_numpy() if hasattr(regimes, "to_numpy") else regimes)
    values = values[~np.isnan(values.astype(float))].astype(np.int64) if values.size else values.astype(np.int64)
    values = values[values >= 0]
    if n_classes < 1:
        raise ValueError(f"n_classes must be ≥ 1, got {n_classes}")
    if values.size and values.max() >= n_classes:
        raise ValueError(f"regime id {int(values.max())} is outside 0…{n_classes - 1} (the configured regimes)")
    counts = np.bincount(values, minlength=n_classes)[:n_classes]
    return ClassBalance({int(c): int(k) for c, k in enumerate(counts)}, int(n_classes))
