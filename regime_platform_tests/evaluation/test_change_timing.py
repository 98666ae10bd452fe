"""Regime-change timing on a hand-built sequence: early call, late call, never, flip-back."""
from __future__ import annotations

import datetime as dt

import numpy as np

from regime_platform.evaluation import change_timing


def test_early_late_never_and_flip_back():
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(20)]
    #                 0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15 16 17 18 19
    true = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2])
    pred = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    #  change at 5 (0→1): first 1 at 3 → lead −2, held (no flip-back)
    #  change at 10 (1→0): first 0 at 13 → lag +3
    #  change at 15 (0→2): never forecast 2 → None
    events = change_timing.change_events(days, true, pred)
    assert [e["lead_sessions"] for e in events] == [-2, 3, None]
    assert [e["flipped_back"] for e in events] == [False, False, False]
    assert [e["first_lead_sessions"] for e in events] == [-2, 3, None]
    assert events[0]["first_call_date"] == days[3] and events[2]["first_call_date"] is None
    assert (events[1]["from_regime"], events[1]["to_regime"]) == (1, 0)


def test_an_early_call_not_held_is_a_flip_back():
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(8)]
    true = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    pred = np.array([0, 1, 0, 0, 0, 0, 1, 1])  # called at 1, back to 0 at 2, the change comes at 5
    (event,) = change_timing.change_events(days, true, pred)
    assert event["first_lead_sessions"] == -4 and event["flipped_back"] is True
    assert event["lead_sessions"] == 1 and event["call_date"] == days[6]  # the call that held came a session late


def test_timing_table_and_median_per_model():
    import polars as pl

    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(10)]
    true = [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    rows = []
    for model, pred in {"persistence": [0, 0, 0, 0, 1, 1, 1, 0, 0, 0], "early": [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]}.items():
        rows += [{"model": model, "fold": 0, "as_of": d, "target_date": d, "horizon": 1, "predicted_regime": p,
                  "probabilities": [1.0, 0.0], "true_regime": t, "known_regime": 0} for d, p, t in zip(days, pred, true)]
    table = change_timing.timing_table(pl.DataFrame(rows))
    assert table.height == 4
    leads = change_timing.median_leads(table)
    assert leads[("persistence", 1)] == 1.0 and leads[("early", 1)] == -1.0
