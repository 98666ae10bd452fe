"""Regime-change timing: does a model see a change coming, or only confirm it weeks later?

For every change of the true regime inside the out-of-sample span (target session c, where the true regime
differs from the previous target session's), and every model, we look at the model's forecasts indexed by
their target session, from the previous change (or the start of the span) up to the next change (or the end):

- `first_call_date` / `first_lead_sessions`: the first target session in that stretch whose forecast is the
  new regime, counted only from the first session at which the model forecast the old regime (a model still
  forecasting the regime before the previous change has not called this one; if it never forecast the old
  regime, from the change on), as sessions from c (negative = before the change happened);
- `call_date` / `lead_sessions`: the call that held — the start of the run of new-regime forecasts that
  reaches the change (or, when the forecast at c is not the new regime, the first one after it); None
  ("never") when the model never forecast the new regime before the next change. The median lead per model
  is taken over this one: a flip-flopping model makes very early first calls that mean nothing;
- `flipped_back`: the first call came before the change and was not held (the model forecast something else
  again before the change happened).

Persistence (the regime known at t carried forward) is the reference: its lag is the horizon plus however
long the labeler takes to recognise a change. Pure polars/numpy, no Dagster.
"""
from __future__ import annotations

import numpy as np
import polars as pl

TIMING_SCHEMA = {"model": pl.Utf8, "horizon": pl.Int32, "change_date": pl.Date, "from_regime": pl.Int32,
                 "to_regime": pl.Int32, "first_call_date": pl.Date, "first_lead_sessions": pl.Int32,
                 "call_date": pl.Date, "lead_sessions": pl.Int32, "flipped_back": pl.Boolean}


def change_events(target_dates: list, true_regime: np.ndarray, predicted: np.ndarray) -> list[dict]:
    """Timing of every true-regime change for one model's forecasts, sorted by target date (one row per date)."""
    true_regime = np.asarray(true_regime)
    predicted = np.asarray(predicted)
    changes = [i for i in range(1, len(true_regime)) if true_regime[i] != true_regime[i - 1]]
    events = []
    for n, c in enumerate(changes):
        start = changes[n - 1] if n > 0 else 0
        end = changes[n + 1] if n + 1 < len(changes) else len(true_regime)
        old, new = true_regime[c - 1], true_regime[c]
        # an early call counts only once the model has acknowledged the old regime: a model still forecasting
        # the regime before the previous change has not called this one
        acknowledged = np.flatnonzero(predicted[start:c] == old)
        start = start + int(acknowledged[0]) if acknowledged.size else c
        hits = np.flatnonzero(predicted[start:end] == new)
        first = start + int(hits[0]) if hits.size else None
        if predicted[c] == new:  # the call that holds: the run of new-regime forecasts through the change
            held = c
            while held - 1 >= start and predicted[held - 1] == new:
                held -= 1
        else:
            later = np.flatnonzero(predicted[c + 1:end] == new)
            held = c + 1 + int(later[0]) if later.size else None
        flipped = first is not None and first < c and (held is None or first < held)
        events.append({"change_date": target_dates[c], "from_regime": int(old), "to_regime": int(new),
                       "first_call_date": None if first is None else target_dates[first],
                       "first_lead_sessions": None if first is None else first - c,
                       "call_date": None if held is None else target_dates[held],
                       "lead_sessions": None if held is None else held - c,
                       "flipped_back": bool(flipped)})
    return events


def timing_table(oos: pl.DataFrame) -> pl.DataFrame:
    """Every change of every model and horizon from `market.oos_predictions` rows (scored rows only).

    Folds are pooled along the target dates (the yearly test spans follow each other without a gap).
    """
    scored = oos.filter(pl.col("true_regime").is_not_null() & pl.col("predicted_regime").is_not_null())
    rows = []
    for (model, horizon), group in scored.sort("model", "horizon", "target_date").group_by(
            ["model", "horizon"], maintain_order=True):
        group = group.unique("target_date", keep="last", maintain_order=True)
        for event in change_events(group["target_date"].to_list(), group["true_regime"].to_numpy(),
                                   group["predicted_regime"].to_numpy()):
            rows.append({"model": model, "horizon": int(horizon)} | event)
    return pl.DataFrame(rows, schema=TIMING_SCHEMA)


def lead_summary(timing: pl.DataFrame) -> pl.DataFrame:
    """Per model and horizon: changes, median lead (never excluded), calls never made, early calls not held."""
    if timing.is_empty():
        return pl.DataFrame(schema={"model": pl.Utf8, "horizon": pl.Int32, "changes": pl.UInt32,
                                    "median_lead": pl.Float64, "never": pl.UInt32, "flipped_back": pl.UInt32})
    return timing.group_by("model", "horizon").agg(
        pl.len().alias("changes"),
        pl.col("lead_sessions").cast(pl.Float64).median().alias("median_lead"),
        pl.col("lead_sessions").is_null().sum().alias("never"),
        pl.col("flipped_back").sum().alias("flipped_back"),
    ).sort("horizon", "median_lead", nulls_last=True)


def median_leads(timing: pl.DataFrame) -> dict[tuple[str, int], float]:
    """(model, horizon) → median lead in sessions (NaN when the model never called any change)."""
    return {(r["model"], int(r["horizon"])): (float("nan") if r["median_lead"] is None else float(r["median_lead"]))
            for r in lead_summary(timing).iter_rows(named=True)}
