"""Regime names, written once: the default names of K generated regimes, the id → name lookup of stored labels,
and the one way a regime is written for a person (``"2: crisis"``, or ``"2"`` when it has no name)."""
from __future__ import annotations

from collections.abc import Mapping

import polars as pl

# ids are ordered by volatility (0 = calmest), so a generated labeler's K regimes get these names
REGIME_NAMES = {2: ["calm", "turbulent"], 3: ["calm", "choppy", "crisis"]}


def regime_name(regime: int, names: Mapping[int, str] | None = None) -> str:
    """The name of ``regime`` in ``names``, else ``"regime <id>"``."""
    return (names or {}).get(regime) or f"regime {regime}"


def regime_names(k: int) -> list[str]:
    """The default names of a generated labeler's ``k`` regimes."""
    return REGIME_NAMES.get(k, [regime_name(i) for i in range(k)])


def names_by_id(frame: pl.DataFrame) -> dict[int, str]:
    """{regime id: name} of a frame with ``regime`` and ``regime_name`` columns (stored labels: one name per
    id; the first is kept); rows without an id or a name are left out."""
    if frame.is_empty():
        return {}
    named = frame.select("regime", "regime_name").drop_nulls().unique("regime", keep="first", maintain_order=True)
    return {int(r): str(n) for r, n in named.iter_rows()}


def regime_label(regime: int, names: Mapping[int, str] | None = None) -> str:
    """A regime as a person reads it in a legend, a title or a table: ``"<id>: <name>"``, or ``"<id>"``."""
    name = (names or {}).get(regime)
    return f"{regime}: {name}" if name else str(regime)
