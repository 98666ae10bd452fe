"""Regime profiles on hand-built label sequences: durations, episodes, shares and transitions are known."""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from regime_platform.explainability import regime_profiles as profiles
from regime_platform_tests.conftest import weekdays

# 0 0 0 | 1 1 | 0 0 0 0 | 2 2 2 | 1 | 0  → episodes of 0: 3, 4, 1; of 1: 2, 1; of 2: 3
REGIMES = np.array([0, 0, 0, 1, 1, 0, 0, 0, 0, 2, 2, 2, 1, 0])


def test_durations_episodes_and_shares():
    stats = profiles.regime_statistics(REGIMES, n_regimes=3, names={0: "calm"})
    by = {row["regime"]: row for row in stats.to_dicts()}
    assert [by[r]["episodes"] for r in range(3)] == [3, 2, 1]
    assert by[0]["duration_mean"] == pytest.approx(8 / 3) and by[0]["duration_median"] == 3
    assert by[0]["duration_longest"] == 4
    assert (by[1]["duration_mean"], by[1]["duration_median"], by[1]["duration_longest"]) == (1.5, 1.5, 2)
    assert (by[2]["duration_mean"], by[2]["duration_longest"]) == (3.0, 3)
    assert [by[r]["sessions"] for r in range(3)] == [8, 3, 3]
    assert stats["share"].sum() == pytest.approx(1.0)
    assert by[0]["name"] == "calm" and by[2]["name"] == "regime 2"


def test_transition_matrix_counts_next_session_moves():
    matrix = profiles.transition_matrix(REGIMES, 3)
    # from 0: 7 moves out of 0 (0→0 ×5, 0→1, 0→2); from 1: 1→1, 1→0 ×2; from 2: 2→2 ×2, 2→1
    expected = np.array([[5 / 7, 1 / 7, 1 / 7], [2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]])
    assert np.allclose(matrix, expected)
    assert np.allclose(matrix.sum(axis=1), 1.0)


def test_returns_are_assigned_to_the_regime_of_their_session():
    # prices double-check: log returns +1 % in regime 0 sessions, −2 % in regime 1 sessions
    regimes = np.array([0, 0, 1, 1, 0])
    steps = np.array([0.0, 0.01, -0.02, -0.02, 0.01])
    stats = profiles.regime_statistics(regimes, 100 * np.exp(np.cumsum(steps)))
    by = {row["regime"]: row for row in stats.to_dicts()}
    assert by[0]["mean_daily_return"] == pytest.approx(0.01)  # the first session has no return
    assert by[1]["mean_daily_return"] == pytest.approx(-0.02) and by[1]["daily_vol"] == pytest.approx(0.0)


def test_feature_statistics_per_regime_skip_missing_values():
    frame = pl.DataFrame({"a": [1.0, 3.0, 10.0, 20.0], "b": [None, 2.0, 4.0, 8.0]})
    stats = profiles.feature_statistics(frame, [0, 0, 1, 1], ["a", "b"])
    row = lambda r, f: stats.filter((pl.col("regime") == r) & (pl.col("feature") == f)).to_dicts()[0]  # noqa: E731
    assert row(0, "a")["mean"] == 2.0 and row(0, "a")["std"] == pytest.approx(np.sqrt(2))
    assert row(0, "b")["mean"] == 2.0 and row(0, "b")["sessions"] == 1
    assert row(1, "b")["mean"] == 6.0


def test_refit_profiles_report_agreement_with_the_stored_labels():
    dates = weekdays(dt.date(2020, 1, 6), 10)
    stored = pl.DataFrame({"date": dates, "regime": [0, 0, 0, 1, 1, 1, 0, 0, 1, 1], "adj_close": np.linspace(100, 110, 10)})
    schedule = [profiles.RefitFold(0, 2021, dates[5]), profiles.RefitFold(1, 2022, dates[9])]

    def fold_labels(end):  # the first refit swaps the ids of the last stored session it sees
        n = dates.index(end) + 1
        regimes = stored["regime"].to_numpy()[:n].copy()
        if n == 6:
            regimes[-1] = 0
        return dates[:n], regimes

    folds = profiles.refit_profiles(schedule, fold_labels, stored, 2)
    first = folds.filter(pl.col("fold") == 0)
    assert first["agreement"].unique().item() == pytest.approx(5 / 6)
    assert first.filter(pl.col("regime") == 1)["agreement_regime"].item() == pytest.approx(2 / 3)
    assert folds.filter(pl.col("fold") == 1)["agreement"].unique().item() == 1.0
    assert first["fit_end"].unique().item() == dates[5] and first["fit_start"].unique().item() == dates[0]
    long = profiles.long_statistics(first, "refit", 0, dates[0], dates[5])
    assert set(long["statistic"]) >= {"share", "episodes", "duration_longest", "agreement"}


def test_spread_evenly_keeps_first_and_last():
    picked, thinned = profiles.spread_evenly(list(range(20)), 5)
    assert thinned and picked[0] == 0 and picked[-1] == 19 and len(picked) == 5
    assert profiles.spread_evenly([1, 2], 5) == ([1, 2], False)


def test_long_rows_carry_transitions_and_feature_statistics():
    stats = profiles.regime_statistics(REGIMES, n_regimes=3)
    frame = pl.DataFrame({"a": np.arange(REGIMES.size, dtype=float)})
    long = profiles.long_statistics(stats, "stored", transitions=profiles.transition_matrix(REGIMES, 3),
                                    features=profiles.feature_statistics(frame, REGIMES, ["a"], 3))
    value = lambda r, s: long.filter((pl.col("regime") == r) & (pl.col("statistic") == s))["value"].item()  # noqa: E731
    assert value(2, "transition_to_1") == pytest.approx(1 / 3)
    assert value(0, "episodes") == 3 and value(1, "a_mean") == pytest.approx((3 + 4 + 12) / 3)
    assert long["fold"].null_count() == long.height and set(long["scope"]) == {"stored"}
