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
    leads = change_timing.pooled_metrics(table)
    assert leads[("persistence", 1)] == {"change_lead_median": 1.0, "change_called_share": 1.0}
    assert leads[("early", 1)] == {"change_lead_median": -1.0, "change_called_share": 1.0}


def test_a_constant_forecaster_never_has_the_best_change_lead():
    """The old rule scored "always calm" lead 0 on every change into calm (it took the change as the start when the
    model never forecast the old regime) and dropped the changes it never called: the best median of all. A change
    is now called only by a model that forecast the old regime first, and a miss ranks after every call."""
    import polars as pl

    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(60)]
    true = ([0] * 10 + [1] * 10) * 3
    late = [0] * 3 + true[:-3]  # three sessions late on every change
    rows = []
    for model, pred in {"majority": [0] * 60, "late": late}.items():
        rows += [{"model": model, "fold": 0, "as_of": d, "target_date": d, "horizon": 1, "predicted_regime": p,
                  "probabilities": [1.0, 0.0], "true_regime": t, "known_regime": 0} for d, p, t in zip(days, pred, true)]
    summary = change_timing.pooled_metrics(change_timing.timing_table(pl.DataFrame(rows)))
    assert summary[("majority", 1)]["change_called_share"] == 0.0
    assert np.isnan(summary[("majority", 1)]["change_lead_median"])  # every change missed: no median lead
    assert summary[("late", 1)] == {"change_lead_median": 3.0, "change_called_share": 1.0}
    assert change_timing.median_lead_with_misses([1, None, None]) is None
    assert change_timing.median_lead_with_misses([-2, 4, None]) == 4.0  # the miss ranks last, not dropped
