"""Generated labelers: known switch points recovered, ids ordered by volatility, no data used after the fit span."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from regime_platform import calendar
from regime_platform.features.compute import compute_features
from regime_platform.labels import LABELERS, assign_generated, class_balance, labelable, make_labeler, regime_profile

SEGMENTS = [(0.0006, 0.006), (-0.001, 0.025), (0.0006, 0.006), (-0.001, 0.025), (0.0006, 0.006)]  # calm/turbulent
LENGTH = 300


def synthetic(segments=SEGMENTS, seed=3) -> tuple[pl.DataFrame, np.ndarray]:
    """Prices whose daily returns switch between calm and turbulent regimes at known sessions."""
    rng = np.random.default_rng(seed)
    r = np.concatenate([rng.normal(mu, sd, LENGTH) for mu, sd in segments])
    truth = np.concatenate([np.full(LENGTH, int(sd > 0.01)) for _, sd in segments])
    days = calendar.sessions("2001-01-02", "2010-12-31")[: len(r)]
    bars = pl.DataFrame({"date": days, "ticker": "X", "adj_close": 100 * np.exp(np.cumsum(r)),
                         "volume": 1e6})
    return compute_features(bars).join(bars.select("date", "adj_close"), on="date"), truth


def away_from_switches(n, width=40):
    keep = np.ones(n, dtype=bool)
    for s in range(LENGTH, n, LENGTH):
        keep[max(0, s - width): s + width] = False
    return keep


@pytest.mark.parametrize("name", ["jump", "hmm"])
def test_two_regime_labelers_recover_known_switches(name):
    frame, truth = synthetic()
    labeler = make_labeler(name)
    rows = labelable(frame, labeler)
    labeler.fit(rows)
    got = labeler.predict(rows)
    aligned = truth[frame["date"].is_in(rows["date"].implode()).to_numpy()]
    keep = away_from_switches(len(truth))[frame["date"].is_in(rows["date"].implode()).to_numpy()]
    assert (got[keep] == aligned[keep]).mean() > 0.9  # 1 = turbulent: ids ordered by volatility


def test_kmeans_three_regimes_ordered_by_volatility():
    frame, _ = synthetic([(0.0005, 0.004), (0.0, 0.012), (-0.002, 0.035)] * 2)
    result = assign_generated(frame, "kmeans")
    vols = result.profile.table.sort("regime")["annual_vol"].to_list()
    assert vols == sorted(vols) and result.profile.table["name"].to_list() == ["calm", "choppy", "crisis"]


def test_drawdown_dates_bear_from_peak_to_trough():
    up = np.linspace(100, 120, 50)           # peak 120 at index 49
    down = np.linspace(119, 90, 60)          # -25 %: trough 90 at index 109
    rise = np.linspace(91, 117, 60)          # +30 % from the trough, confirmed at 108 (=90×1.2)
    p = np.concatenate([up, down, rise])
    frame = pl.DataFrame({"date": calendar.sessions("2005-01-03", "2006-12-29")[: len(p)], "adj_close": p})
    labeler = make_labeler("drawdown").fit(frame)
    hindsight, online = labeler.predict(frame), labeler.predict_online(frame)
    assert hindsight.tolist() == [0] * 50 + [1] * 60 + [0] * 60
    confirm_fall = int(np.argmax(p <= 120 * 0.8))
    confirm_rise = 110 + int(np.argmax(rise >= 90 * 1.2))
    assert online.tolist() == [0] * confirm_fall + [1] * (confirm_rise - confirm_fall) + [0] * (len(p) - confirm_rise)


@pytest.mark.parametrize("name", sorted(LABELERS))
def test_no_data_after_the_fit_span_is_used(name):
    frame, _ = synthetic()
    labeler_a, labeler_b = make_labeler(name), make_labeler(name)
    rows = labelable(frame, labeler_a)
    fit_span = rows.head(900)
    rng = np.random.default_rng(0)
    garbage = rows.with_columns(  # a different future after the fit span
        pl.when(pl.int_range(pl.len()) >= 900).then(pl.col(c) * rng.uniform(0.5, 2.0, rows.height))
        .otherwise(pl.col(c)).alias(c) for c in ["adj_close", *[c for c in rows.columns if c.startswith(("vol", "ret", "rsi"))]])
    labeler_a.fit(fit_span)
    labeler_b.fit(garbage.filter(pl.col("date") <= fit_span["date"][-1]))
    online_a, online_b = labeler_a.predict_online(rows), labeler_b.predict_online(garbage)
    assert (online_a[:900] == online_b[:900]).all()
    # row t of the online assignment equals the assignment made on the frame truncated at t
    for t in (120, 450, 899):
        assert labeler_a.predict_online(rows.head(t + 1))[-1] == online_a[t]


@pytest.mark.parametrize("name", sorted(LABELERS))
def test_state_mapping_orders_ids_by_volatility_in_the_fit_span(name):
    """The mapping from raw states to stored ids is a permutation, and id 0 is the calmest regime of the fit
    span — whatever raw numbering the underlying model happened to choose."""
    from regime_platform.labels.labelers import log_returns

    frame, _ = synthetic()
    labeler = make_labeler(name)
    rows = labelable(frame, labeler)
    labeler.fit(rows)
    assert sorted(labeler.state_mapping) == list(range(labeler.n_regimes))
    assert sorted(labeler.state_mapping.values()) == list(range(labeler.n_regimes))
    ids = labeler.predict(rows)
    r = log_returns(rows)
    vols = [np.nanstd(r[ids == c]) for c in range(labeler.n_regimes) if (ids == c).sum() > 1]
    assert vols == sorted(vols), f"{name}: ids are not ordered by volatility: {vols}"
    if name != "drawdown":  # the drawdown rule has fixed states; the others number theirs arbitrarily
        flipped = {raw: labeler.n_regimes - 1 - i for raw, i in labeler.state_mapping.items()}
        labeler.state_mapping = flipped
        assert (labeler.predict(rows) == labeler.n_regimes - 1 - ids).all()  # the mapping really is applied


def test_hmm_online_is_filtered_not_smoothed():
    frame, _ = synthetic()
    labeler = make_labeler("hmm")
    rows = labelable(frame, labeler)
    labeler.fit(rows)
    probs = labeler.filtered_probabilities(rows)
    for t in (200, 777):
        direct = labeler.model.predict_proba(labeler._inputs(rows.head(t + 1)))[-1]
        assert np.allclose(probs[t], direct, atol=1e-8)


def test_default_jump_labeler_on_the_real_sample(sample_bars):
    frame = compute_features(sample_bars.with_columns(pl.lit("SPY").alias("ticker"))).join(
        sample_bars.select("date", "adj_close"), on="date")
    result = assign_generated(frame, "jump")
    balance = class_balance(result.table["regime"], 2)
    assert not balance.missing and not balance.rare
    profile = result.profile.table.sort("regime")
    assert profile["annual_vol"][1] > 1.5 * profile["annual_vol"][0]
    assert profile["duration_mean"].min() > 20  # persistent regimes, not daily noise
    assert result.table["known_regime"].null_count() == 0 and result.fit_end == frame["date"][-1]


def test_class_balance_rule():
    balance = class_balance(np.array([0] * 97 + [1] * 3), 3)
    assert balance.missing == [2] and balance.rare == [1]
    assert balance.problems("x")[1] == ["x: regime 2 has no rows"]


def test_profile_durations_and_transitions():
    frame = pl.DataFrame({"date": calendar.sessions("2005-01-03", "2005-01-14"),
                          "adj_close": [100.0, 101, 102, 100, 95, 96, 97, 98, 99, 100],
                          "regime": [0, 0, 0, 1, 1, 0, 0, 0, 1, 1]})
    profile = regime_profile(frame)
    assert profile.table["episodes"].to_list() == [2, 2]
    assert profile.table["duration_mean"].to_list() == [3.0, 2.0]
    assert np.allclose(profile.transition_matrix, [[4 / 6, 2 / 6], [1 / 3, 2 / 3]])
    assert "Transition matrix" in profile.to_markdown()
