"""The headline horizon: the one horizon every evaluation page leads with. No Dagster here."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl


def headline_horizon(horizons: pl.Series | Sequence[int], configured: int) -> int:
    """``configured`` (REGIME_HORIZON) when some row has it, or when there are no rows at all; else the horizon
    with the most rows (the shortest of those tied). ``horizons``: the horizon of every row (predictions or metrics)."""
    values = np.asarray(pl.Series(horizons, dtype=pl.Int64).drop_nulls().to_numpy())
    if values.size == 0 or (values == configured).any():
        return int(configured)
    found, counts = np.unique(values, return_counts=True)
    return int(found[np.argmax(counts)])
