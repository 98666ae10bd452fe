"""Regime-change timing: does a model see a change coming, or only confirm it weeks later?

For every change of the true regime inside the out-of-sample span (target session c, where the true regime
differs from the previous target session's), and every model, we look at the model's forecasts indexed by
their target session, from the previous change (or the start of the span) up to the next change (or the end):

- `first_call_date` / `first_lead_sessions`: the first target session in that stretch whose forecast is the
  new regime, counted only from the first session at which the model forecast the old regime (a model still
  forecasting the regime before the previous change has not called this one; one that never forecast the
  old regime in the stretch never called the change — it was sitting in the new regime all along, as a
  constant forecaster does), as sessions from c (negative = before the change happened);
- `call_date` / `lead_sessions`: the call that held — the start of the run of new-regime forecasts that
  reaches the change (or, when the forecast at c is not the new regime, the first one after it); None
  ("never") when the model never forecast the new regime before the next change. The median lead per model
  is taken over this one: a flip-flopping model makes very early first calls that mean nothing;
- `flipped_back`: the first call came before the change and was not held (the model forecast something else
  again before the change happened).

Persistence (the regime known at t carried forward) is the reference: its lag is the horizon plus however
long the labeler takes to recognise a change. Every summary counts a change never called as a miss: the
median lead ranks a miss after every call (so it is NULL once more than half the changes are missed, and a
constant forecaster, which calls nothing, never has the best lead), and the share of changes called stands
beside it. Pure polars/numpy, no Dagster.
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
        if not acknowledged.size:  # never forecast the old regime: this change was not called
            events.append({"change_date": target_dates[c], "from_regime": int(old), "to_regime": int(new),
                           "first_call_date": None, "first_lead_sessions": None, "call_date": None,
                           "lead_sessions": None, "flipped_back": False})
            continue
        start = start + int(acknowledged[0])
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


def median_lead_with_misses(leads: list) -> float | None:
    """The median of the leads with every miss (None) ranked after every call; None when the median is a miss."""
    if not leads:
        return None
    value = float(np.median([np.inf if v is None else float(v) for v in leads]))
    return value if np.isfinite(value) else None


def lead_summary(timing: pl.DataFrame) -> pl.DataFrame:
    """Per model and horizon: changes, the median lead (misses ranked last), the share called, calls never made,
    early calls not held."""
    schema = {"model": pl.Utf8, "horizon": pl.Int32, "changes": pl.UInt32, "median_lead": pl.Float64,
              "called_share": pl.Float64, "never": pl.UInt32, "flipped_back": pl.UInt32}
    if timing.is_empty():
        return pl.DataFrame(schema=schema)
    rows = []
    for (model, horizon), group in timing.group_by(["model", "horizon"], maintain_order=True):
        leads = group["lead_sessions"].to_list()
        never = sum(v is None for v in leads)
        rows.append({"model": model, "horizon": int(horizon), "changes": len(leads),
                     "median_lead": median_lead_with_misses(leads), "called_share": 1.0 - never / len(leads),
                     "never": never, "flipped_back": int(group["flipped_back"].sum())})
    return pl.DataFrame(rows, schema=schema).sort("horizon", "median_lead", nulls_last=True)


def pooled_metrics(timing: pl.DataFrame) -> dict[tuple[str, int], dict[str, float]]:
    """(model, horizon) → {"change_lead_median": …, "change_called_share": …} (NaN: more than half missed)."""
    return {(r["model"], int(r["horizon"])): {
        "change_lead_median": float("nan") if r["median_lead"] is None else float(r["median_lead"]),
        "change_called_share": float(r["called_share"])} for r in lead_summary(timing).iter_rows(named=True)}
