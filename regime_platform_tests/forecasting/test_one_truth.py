"""One truth for the ledger and the walk-forward (DESIGN §3a): a forecast for target d is scored against the label at
d once it has settled — for a generated labeler, from a fit that saw at least S sessions after d.

Replayed on the bundled S&P 500 sample with the drawdown rule (a bear market dated from its peak once the 20 % fall
is confirmed — the case where the label at the end of a fit is most often wrong): the same forecasts are scored the
walk-forward's way (the fold's truth, `RefitLabels`) and the ledger's way (the labels refit through each replayed
session, as `regime_labels` stores them, scored by `score_pending` the first session the target has settled).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from regime_platform.features.compute import compute_features
from regime_platform.forecasting import ledger
from regime_platform.labels import labelable, make_labeler
from regime_platform.labels.assign import assign_generated
from regime_platform.modeling.targets import RefitLabels
from regime_platform.settings import SETTLE_SESSIONS

H = 5
YEARS = (2007, 2008)  # the peak of October 2007 is confirmed as a bear market only in July 2008


@pytest.fixture(scope="module")
def rows(sample_bars):
    bars = sample_bars.with_columns(ticker=pl.lit("SPY"))
    frame = compute_features(bars).join(bars.select("date", "adj_close"), on="date")
    return labelable(frame, make_labeler("drawdown"))


def walk_forward_truth(rows: pl.DataFrame, settle: int) -> dict[dt.date, int]:
    """Each test year's targets as a walk-forward fold scores them."""
    dates, truth = rows["date"].to_list(), {}
    for year in YEARS:
        test = [i for i, d in enumerate(dates) if d.year == year]
        labels = RefitLabels(rows, lambda: make_labeler("drawdown"), settle=settle).fold_labels(
            dates[test[0] - 70], dates[test[-1] + H])
        truth |= {dates[i + H]: int(labels.test_regime[i + H]) for i in test if labels.test_regime[i + H] >= 0}
    return truth


def ledger_truth(rows: pl.DataFrame, settle: int, targets: list[dt.date]) -> dict[dt.date, int]:
    """The same targets as the daily ledger scores them: pending rows, the labels refit through each session, each
    row scored once, the first session its target has settled."""
    dates = rows["date"].to_list()
    pending = pl.DataFrame({"ticker": "SPY", "as_of": [dates[dates.index(d) - H] for d in targets], "model": "m",
                            "horizon": H, "target_date": targets})
    realized: dict[dt.date, int] = {}
    for e in range(dates.index(targets[0]), len(dates)):
        if pending.is_empty():
            break
        labels = assign_generated(rows.head(e + 1), "drawdown").table  # what regime_labels stores after session e
        scored = ledger.score_pending(pending, labels, "v", settle)
        for r in scored.join(pending.select("as_of", "target_date"), on="as_of").iter_rows(named=True):
            realized[r["target_date"]] = r["realized_regime"]
        pending = pending.join(scored.select("as_of"), on="as_of", how="anti")
    return realized


def test_the_ledger_and_the_walk_forward_score_the_same_forecasts_against_the_same_truth(rows):
    settle = SETTLE_SESSIONS["drawdown"]
    wf = walk_forward_truth(rows, settle)
    live = ledger_truth(rows, settle, sorted(wf))
    assert len(wf) > 400 and sorted(live) == sorted(wf)  # every walk-forward target is scored live too
    assert live == wf
    # the same forecasts (persistence: the regime known at t, what the endpoint label flatters) score the same
    dates = rows["date"].to_list()
    online = dict(zip(dates, make_labeler("drawdown").fit(rows).predict_online(rows)))
    forecast = {d: int(online[dates[dates.index(d) - H]]) for d in wf}
    wf_hits = np.mean([forecast[d] == wf[d] for d in wf])
    live_hits = np.mean([forecast[d] == live[d] for d in live])
    assert live_hits == wf_hits and 0.5 < wf_hits < 0.95


def test_scoring_at_the_end_of_the_fit_is_a_different_truth_that_flatters_persistence(rows):
    """The rule the ledger had before: score as soon as the labels cover the target (S = 0). The endpoint label of a
    drawdown fit is the rule as confirmed that day, so the bear of 2007-08 is missed where it began."""
    wf = walk_forward_truth(rows, SETTLE_SESSIONS["drawdown"])
    endpoint = ledger_truth(rows, 0, sorted(wf))
    missed_bear = [d for d in wf if endpoint[d] == 0 and wf[d] == 1]  # from the peak of 2007-10-09 on
    assert len(missed_bear) > 150 and missed_bear[0] == dt.date(2007, 10, 10)
    dates = rows["date"].to_list()
    online = dict(zip(dates, make_labeler("drawdown").fit(rows).predict_online(rows)))
    forecast = {d: int(online[dates[dates.index(d) - H]]) for d in wf}
    assert np.mean([forecast[d] == endpoint[d] for d in wf]) > np.mean([forecast[d] == wf[d] for d in wf]) + 0.1
