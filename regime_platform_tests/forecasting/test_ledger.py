"""The ledger's domain rules and scoreboard math, by hand."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest

from regime_platform.forecasting import ledger

D = dt.date


@dataclass
class FakeModel:
    name: str = "fake"
    model_version: str = "fake-2018-12-14-00000000"
    feature_names: tuple = ("a", "b")
    window: int = 3
    horizon: int = 5
    train_target_end: dt.date = D(2018, 12, 14)
    labeler_fit_end: dt.date | None = D(2018, 12, 14)
    seen: list | None = None
    min_dwell: int = 1

    def forecast_last(self, X, known_regime_at_t=None):
        self.seen = [X, known_regime_at_t]
        return np.array([0.3, 0.7])


def features(last: dt.date, n: int = 4, gap: bool = False) -> pl.DataFrame:
    from regime_platform import calendar

    days = calendar.sessions(last - dt.timedelta(days=20), last)[-n:]
    a = [1.0] * n
    if gap:
        a[-2] = None
    return pl.DataFrame({"date": days, "a": a, "b": [2.0] * n})


def test_target_session_skips_holidays_and_weekends():
    assert ledger.target_session(D(2018, 12, 21), 1) == D(2018, 12, 24)
    assert ledger.target_session(D(2018, 12, 21), 5) == D(2018, 12, 31)   # 24, 26, 27, 28, 31


def test_forecast_rows_use_the_last_window_and_the_known_regime():
    model = FakeModel()
    known = ledger.KnownRegime(1, "jump-2018-12-17-abcd0123")
    rows = ledger.forecast_rows("SPY", [model], D(2018, 12, 17), features(D(2018, 12, 17)), known, "sample:^GSPC")
    assert rows.row(0, named=True) | {"probabilities": None} == {
        "ticker": "SPY", "as_of": D(2018, 12, 17), "target_date": D(2018, 12, 24), "horizon": 5, "model": "fake",
        "predicted_regime": 1, "probabilities": None, "model_version": model.model_version,
        "price_source": "sample:^GSPC", "status": "pending", "realized_regime": None, "labels_version": None,
        "known_regime": 1, "known_labels_version": "jump-2018-12-17-abcd0123", "decision_note": None}
    assert model.seen[0].shape == (3, 2) and model.seen[1] == 1


@pytest.mark.parametrize("end, labeler_end, refused", [
    (D(2018, 12, 14), D(2018, 12, 14), False),
    (D(2018, 12, 18), None, True),                 # trained on a target after the date
    (D(2018, 12, 14), D(2018, 12, 18), True),      # its labeler saw data after the date
])
def test_a_model_fit_on_later_data_is_refused(end, labeler_end, refused):
    model = FakeModel(train_target_end=end, labeler_fit_end=labeler_end)
    message = ledger.in_sample_refusal(model, D(2018, 12, 17))
    assert (message is not None) == refused
    if refused:
        assert "in-sample" in message and "2018-12-17" in message
        with pytest.raises(ledger.LedgerError, match="in-sample"):
            ledger.forecast_rows("SPY", [model], D(2018, 12, 17), features(D(2018, 12, 17)), 0, "x")


def test_the_newest_unclosed_session_is_refused():
    before_close = dt.datetime(2024, 11, 27, 20, 0, tzinfo=dt.timezone.utc)   # 15:00 New York
    assert "has not closed yet" in ledger.not_closed_refusal(D(2024, 11, 27), before_close)
    after_close = dt.datetime(2024, 11, 27, 21, 30, tzinfo=dt.timezone.utc)
    assert ledger.not_closed_refusal(D(2024, 11, 27), after_close) is None


def test_missing_features_are_refused():
    with pytest.raises(ledger.LedgerError, match="no SPY row for 2018-12-17"):
        ledger.forecast_rows("SPY", [FakeModel()], D(2018, 12, 17), features(D(2018, 12, 14)), 0, "x")
    with pytest.raises(ledger.LedgerError, match="missing values of a "):
        ledger.forecast_rows("SPY", [FakeModel()], D(2018, 12, 17), features(D(2018, 12, 17), gap=True), 0, "x")


def test_scoring_takes_only_covered_targets_and_records_the_labels_version():
    pending = pl.DataFrame({"ticker": ["SPY", "SPY"], "as_of": [D(2018, 12, 17), D(2018, 12, 21)], "model": ["m", "m"], "horizon": [5, 5],
                            "target_date": [D(2018, 12, 24), D(2018, 12, 31)]})
    labels = pl.DataFrame({"date": [D(2018, 12, 21), D(2018, 12, 24)], "regime": [0, 1], "labeler": ["jump"] * 2})
    version = ledger.labels_version(labels)
    assert version.startswith("jump-2018-12-24-") and version == ledger.labels_version(labels.reverse())
    assert version != ledger.labels_version(labels.with_columns(pl.Series("regime", [0, 0])))
    scored = ledger.score_pending(pending, labels, version)
    assert scored.to_dicts() == [{"ticker": "SPY", "as_of": D(2018, 12, 17), "model": "m", "horizon": 5, "realized_regime": 1,
                                  "labels_version": version}]


def test_a_generated_label_scores_only_once_it_has_settled_and_a_users_label_at_once():
    """DESIGN §3a: the label at d scores a forecast once the labels' fit saw S sessions after d."""
    days = [D(2018, 12, 17), D(2018, 12, 18), D(2018, 12, 19), D(2018, 12, 20), D(2018, 12, 21), D(2018, 12, 24)]
    pending = pl.DataFrame({"ticker": "SPY", "as_of": days[:4], "model": "m", "horizon": 2, "target_date": days[2:]})
    generated = pl.DataFrame({"date": days, "regime": [0, 0, 1, 1, 0, 0], "labeler": "jump"})
    assert ledger.settled_truth(generated, 2)["date"].to_list() == days[:4]
    scored = ledger.score_pending(pending, generated, "v", settle=2)
    assert scored["as_of"].to_list() == days[:2] and scored["realized_regime"].to_list() == [1, 1]
    assert ledger.score_pending(pending, generated, "v", settle=6).is_empty()
    user = generated.with_columns(labeler=pl.lit("user"))  # a user's file: its label at d is the truth, settled
    assert ledger.score_pending(pending, user, "v", settle=2)["as_of"].to_list() == days[:4]


def test_scoreboard_math_by_hand():
    predicted, realized = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])
    assert ledger.hit_rate(predicted, realized) == 0.75
    # class 0: tp 2, fp 0, fn 1 → 0.8; class 1: tp 1, fp 1, fn 0 → 2/3
    assert ledger.macro_f1(predicted, realized) == pytest.approx((0.8 + 2 / 3) / 2)
    probs = [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [1.0, 0.0]]
    # (0.01+0.01) + (0.04+0.04) + (0.36+0.36) + 0 = 0.82, over 4 rows, halved (the evaluation's one Brier score)
    assert ledger.figures(predicted, realized, probs).brier == pytest.approx(0.82 / 4 / 2)


def test_scoreboard_and_latest_forecasts_per_ticker():
    rows = []
    for i, (pred, real, status) in enumerate([(1, 1, "scored"), (0, 1, "scored"), (1, None, "pending")]):
        rows.append({"ticker": "SPY", "as_of": D(2018, 12, 17) + dt.timedelta(days=i), "target_date": D(2018, 12, 28), "horizon": 5,
                     "model": "m", "predicted_regime": pred, "probabilities": [1.0 - pred, float(pred)],
                     "model_version": f"v{i}", "price_source": "s", "status": status, "realized_regime": real,
                     "labels_version": None})
    # QQQ's one row is a miss, and its walk-forward rows all hits: nothing of it may reach SPY's figures
    rows.append(dict(rows[0], ticker="QQQ", predicted_regime=0, probabilities=[1.0, 0.0], model_version="q0"))
    book = pl.DataFrame(rows, schema=ledger.LEDGER_SCHEMA)
    oos = pl.DataFrame({"ticker": ["SPY", "SPY", "QQQ"], "model": ["m", "m", "m"], "horizon": [5, 5, 5],
                        "predicted_regime": [0, 1, 1], "probabilities": [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]],
                        "true_regime": [0, 0, 1]})
    qqq, spy = ledger.jsonable(ledger.scoreboard(book, oos))
    assert (spy["ticker"], spy["scored"], spy["pending"], spy["live_hit_rate"], spy["wf_hit_rate"]) == (
        "SPY", 2, 1, 0.5, 0.5)
    assert (qqq["ticker"], qqq["scored"], qqq["live_hit_rate"], qqq["wf_hit_rate"]) == ("QQQ", 1, 0.0, 1.0)
    record = ledger.live_record(book)
    assert record.filter(pl.col("ticker") == "SPY")["running_hit_rate"].to_list() == [1.0, 0.5]
    latest = ledger.jsonable(ledger.latest_forecasts(book, {"SPY": {1: "turbulent"}, "QQQ": {0: "calm"}}))
    assert [(r["ticker"], r["model_version"], r["regime_name"], r["probability"]) for r in latest] == [
        ("QQQ", "q0", "calm", 1.0), ("SPY", "v2", "turbulent", 1.0)]


def test_scoreboard_walk_forward_brier_is_model_metrics_pooled_brier():
    """The same out-of-sample rows give the same Brier on the scoreboard (wf_brier) and in model_metrics (pooled):
    one definition, the halved multi-class score (scikit-learn's ``scale_by_half=True``)."""
    from regime_platform.evaluation import metrics

    rng = np.random.default_rng(7)
    n, k = 60, 3
    probs = rng.dirichlet(np.ones(k), size=n)
    true = rng.integers(0, k, size=n)
    dates = [D(2017, 1, 2) + dt.timedelta(days=i) for i in range(n)]
    oos = pl.DataFrame({
        "model": ["m"] * n, "fold": [0] * (n // 2) + [1] * (n - n // 2), "as_of": dates, "target_date": dates,
        "horizon": [5] * n, "predicted_regime": probs.argmax(axis=1).tolist(), "probabilities": probs.tolist(),
        "true_regime": true.tolist(), "known_regime": np.roll(true, 1).tolist(),
    }, schema_overrides={"probabilities": pl.List(pl.Float64), "horizon": pl.Int32})
    pooled = metrics.metrics_table(oos).filter(pl.col("fold").is_null() & (pl.col("metric") == "brier"))
    oos = oos.with_columns(pl.lit("SPY").alias("ticker"))
    book = pl.DataFrame([{"ticker": "SPY", "as_of": D(2018, 12, 17), "target_date": D(2018, 12, 24), "horizon": 5, "model": "m",
                          "predicted_regime": 0, "probabilities": [0.5, 0.3, 0.2], "model_version": "v",
                          "price_source": "s", "status": "scored", "realized_regime": 1, "labels_version": None}],
                        schema=ledger.LEDGER_SCHEMA)
    (board,) = ledger.jsonable(ledger.scoreboard(book, oos))
    assert board["wf_brier"] == pytest.approx(pooled["value"].item(), rel=1e-12)
    # and the live figure is the same score: (0.5² + 0.7² + 0.2²) / 2 for the one scored row
    assert board["live_brier"] == pytest.approx((0.25 + 0.49 + 0.04) / 2)


def stored(rows: list[tuple[dt.date, int, list[float], str]]) -> pl.DataFrame:
    return pl.DataFrame([{"as_of": d, "predicted_regime": r, "probabilities": p, "model_version": v} for d, r, p, v in rows],
                        schema={"as_of": pl.Date, "predicted_regime": pl.Int64, "probabilities": pl.List(pl.Float64),
                                "model_version": pl.Utf8})


def test_the_dwell_rule_continues_only_over_consecutive_sessions_of_the_same_version():
    """Dwell 3: yesterday and the day before stored decision 0 with argmax 1; today's argmax is 1 again, so the rule
    flips to 1 — only when those rows are the two sessions just before and of the same model version."""
    model = FakeModel(min_dwell=3)  # forecasts [0.3, 0.7]: argmax 1
    today = D(2018, 12, 19)
    v = model.model_version
    history = stored([(D(2018, 12, 17), 0, [0.4, 0.6], v), (D(2018, 12, 18), 0, [0.4, 0.6], v)])
    assert ledger.decide(model, today, np.array([0.3, 0.7]), history)[0] == 1
    # one stored row of argmax 1 only: the streak is 2 < 3, the decision stays 0 (continued, not restarted)
    decision, note = ledger.decide(model, today, np.array([0.3, 0.7]), history.with_columns(
        pl.Series("probabilities", [[0.9, 0.1], [0.4, 0.6]])))
    assert decision == 0 and note.startswith("dwell 3: continued from 2 stored row(s) 2018-12-17 … 2018-12-18")
    held = history.with_columns(pl.Series("probabilities", [[0.9, 0.1], [0.4, 0.6]]))
    # a gap (no row for 2018-12-18): restart at today's argmax, said in the note
    decision, note = ledger.decide(model, D(2018, 12, 20), np.array([0.3, 0.7]), held)
    assert decision == 1 and "restarted" in note and "not of the previous session 2018-12-19" in note
    # another model version yesterday: restart
    other = held.with_columns(pl.Series("model_version", [v, "fake-2018-12-18-11111111"]))
    decision, note = ledger.decide(model, today, np.array([0.3, 0.7]), other)
    assert decision == 1 and "another model version, fake-2018-12-18-11111111" in note
    # a version change further back only shortens the run continued from
    older = held.with_columns(pl.Series("model_version", ["fake-old", v]))
    decision, note = ledger.decide(model, today, np.array([0.3, 0.7]), older)
    assert decision == 0 and "continued from 1 stored row(s) 2018-12-18 … 2018-12-18" in note
    assert ledger.decide(FakeModel(), today, np.array([0.3, 0.7]), held) == (1, None)  # dwell 1: the argmax
