"""The regime known at t for a generated labeler (DESIGN §3a): a fit through t, never one through a later session.

The ledger reads it for every session it forecasts. The daily run's labels step has just fit the labeler through the
session, so the ledger takes that stored fit instead of a second one (issue #30: the second fit was most of the
ledger's own time); a stored fit through any other session is never used.
"""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from regime_platform import calendar
from regime_platform.features.compute import compute_features
from regime_platform.labels import assign, known_regime_at
from regime_platform.labels.assign import assign_generated, fit_through

NO_FILE = "/nonexistent/regime_labels_SPY.csv"
AS_OF = dt.date(2018, 12, 14)
LATER = dt.date(2018, 12, 31)


@pytest.fixture(scope="module")
def frame(sample_bars) -> pl.DataFrame:
    """Six years of the sample's features and adjusted close, as the ledger reads them from the warehouse."""
    bars = sample_bars.filter(pl.col("date") >= dt.date(2012, 1, 3)).with_columns(ticker=pl.lit("SPY"))
    return compute_features(bars).join(bars.select("date", "adj_close"), on="date").drop("ticker")


def stored_through(frame: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """What the labels step stores when the warehouse reaches ``day``."""
    return assign(frame.filter(pl.col("date") <= day), NO_FILE, "jump").table


def test_a_fit_through_the_session_is_used_as_stored_and_equals_a_second_fit(frame):
    stored = stored_through(frame, AS_OF)
    assert fit_through(stored, "jump") == AS_OF
    refit = known_regime_at(frame, NO_FILE, "jump", 0, AS_OF)
    assert known_regime_at(frame, NO_FILE, "jump", 0, AS_OF, stored) == refit
    # used, not refit: a planted change of the stored online label at the session is what comes back
    planted = stored.with_columns(pl.when(pl.col("date") == AS_OF).then(1 - pl.col("known_regime"))
                                  .otherwise(pl.col("known_regime")).alias("known_regime"))
    assert known_regime_at(frame, NO_FILE, "jump", 0, AS_OF, planted).regime == 1 - refit.regime


def test_a_fit_through_a_later_session_is_never_used(frame):
    later = stored_through(frame, LATER)
    assert fit_through(later, "jump") == LATER
    for day in calendar.sessions(AS_OF, dt.date(2018, 12, 28)):
        assert known_regime_at(frame, NO_FILE, "jump", 0, day, later) == \
            known_regime_at(frame, NO_FILE, "jump", 0, day)
    assert known_regime_at(frame, NO_FILE, "jump", 0, AS_OF).labels_version != \
        known_regime_at(frame, NO_FILE, "jump", 0, LATER, later).labels_version


def test_another_labelers_fit_is_never_used(frame):
    stored = stored_through(frame, AS_OF)
    assert fit_through(stored, "kmeans") is None
    assert known_regime_at(frame, NO_FILE, "kmeans", 0, AS_OF, stored) == \
        known_regime_at(frame, NO_FILE, "kmeans", 0, AS_OF)
    assert fit_through(assign_generated(frame, "jump", fit_end=AS_OF).table, "jump") is None  # fit ends before its rows
    assert fit_through(stored.head(0), "jump") is None
