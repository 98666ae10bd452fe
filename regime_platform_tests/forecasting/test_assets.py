"""Ten consecutive trading days replayed on recorded prices: the ledger fills, scores, and the scoreboard adds up.

The bundled sample (S&P 500, to 2018-12-31) is served one session at a time, 2018-12-17 … 2018-12-31, across the
Christmas holiday, exactly as the daily job would: ohlcv → features → regime_forecasts, with the SPY labels refit
each day too so that rows get scored as their targets become labelled. The models are fit once on data up to
2018-12-14 (a reduced configuration), so every ledger row is out of sample.
"""
from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl
import pytest

from regime_platform import calendar
from regime_platform import storage as wh
from regime_platform.defs.features.assets import features
from regime_platform.defs.forecasting.assets import FORECAST_MODELS, forecast_scoreboard, regime_forecasts
from regime_platform.defs.ingestion.assets import ohlcv
from regime_platform.defs.labels.assets import regime_labels
from regime_platform.defs.modeling.assets import model_assets, walk_forward_targets
from regime_platform.evaluation import metrics
from regime_platform.forecasting import ledger
from regime_platform.modeling.targets_version import scope_for
from regime_platform_tests.conftest import materialize_ticker, platform_resources, ticker_instance

DAYS = calendar.sessions(dt.date(2018, 12, 17), dt.date(2018, 12, 31))


def forecast(resources, day: dt.date, raise_on_error: bool = True):
    return dg.materialize([*model_assets, regime_forecasts], selection=[regime_forecasts.key],
                          partition_key=day.isoformat(), resources=resources, raise_on_error=raise_on_error,
                          instance=ticker_instance("SPY"))


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    root = tmp_path_factory.mktemp("ledger")
    resources = platform_resources(root, epochs=2, max_folds=2)
    tags = {"dagster/asset_partition_range_start": "2012-01-03", "dagster/asset_partition_range_end": "2018-12-14"}
    assert dg.materialize([ohlcv, features], resources=resources, tags=tags).success
    assert materialize_ticker([regime_labels], resources).success
    assert materialize_ticker([walk_forward_targets, *model_assets], resources).success
    snapshots: dict[str, pl.DataFrame] = {}
    results = []
    for day in DAYS:  # one trading day after another, as the daily job runs them
        assert dg.materialize([ohlcv, features], partition_key=day.isoformat(), resources=resources).success
        assert materialize_ticker([regime_labels], resources).success
        labels = resources["warehouse"].read("SELECT date, regime, labeler FROM market.regime_labels")
        snapshots[ledger.labels_version(labels)] = labels
        results.append(forecast(resources, day))
    return resources, root, snapshots, results


def test_the_replay_crosses_christmas():
    assert len(DAYS) == 10 and dt.date(2018, 12, 25) not in DAYS and DAYS[-1] == dt.date(2018, 12, 31)


def test_one_ledger_row_per_model_per_day(replay):
    resources, _, _, results = replay
    assert all(r.success for r in results)
    rows = resources["warehouse"].read("SELECT * FROM market.regime_forecasts ORDER BY as_of, model")
    assert rows.height == len(DAYS) * len(FORECAST_MODELS)
    per_day = rows.group_by("as_of").agg(pl.col("model").sort()).sort("as_of")
    assert per_day["as_of"].to_list() == DAYS
    assert all(models == sorted(FORECAST_MODELS) for models in per_day["model"].to_list())
    assert rows["horizon"].unique().to_list() == [5] and rows["ticker"].unique().to_list() == ["SPY"]
    assert rows["price_source"].unique().to_list() == ["sample:^GSPC"]
    # t + 5 sessions, skipping the holiday: 2018-12-19 targets 2018-12-27
    assert rows.filter(pl.col("as_of") == dt.date(2018, 12, 19))["target_date"].unique().to_list() == [dt.date(2018, 12, 27)]
    for r in rows.iter_rows(named=True):
        assert abs(sum(r["probabilities"]) - 1) < 1e-6
        assert r["predicted_regime"] == max(range(len(r["probabilities"])), key=r["probabilities"].__getitem__)
        assert r["model_version"].startswith(r["model"] + "-")


def test_realized_regimes_fill_in_from_the_labels_that_scored_them(replay):
    resources, _, snapshots, _ = replay
    rows = resources["warehouse"].read("SELECT * FROM market.regime_forecasts")
    scored = rows.filter(pl.col("status") == "scored")
    # targets up to 2018-12-31 are labelled by the end: the forecasts of 12-17 … 12-21; later ones stay pending
    assert sorted(scored["as_of"].unique().to_list()) == DAYS[:5]
    assert scored.height == 5 * len(FORECAST_MODELS)
    pending = rows.filter(pl.col("status") == "pending")
    assert pending["realized_regime"].null_count() == pending.height and pending["labels_version"].null_count() == pending.height
    for r in scored.iter_rows(named=True):
        labels = snapshots[r["labels_version"]]
        assert r["realized_regime"] == labels.filter(pl.col("date") == r["target_date"])["regime"].item()
    # scoring happened day by day, as each target date became labelled
    assert scored["labels_version"].n_unique() >= 2


def test_scoreboard_equals_a_hand_computed_hit_rate(replay):
    resources, root, _, _ = replay
    result = dg.materialize([forecast_scoreboard], resources=resources)
    meta = result.asset_materializations_for_node("forecast_scoreboard")[0].metadata
    rows = resources["warehouse"].read("SELECT * FROM market.regime_forecasts WHERE status = 'scored'")
    for model in FORECAST_MODELS:
        mine = [r for r in rows.iter_rows(named=True) if r["model"] == model]
        hits = sum(1 for r in mine if r["predicted_regime"] == r["realized_regime"])
        assert meta[f"live_hit_rate/SPY/{model}"].value == pytest.approx(hits / len(mine))
        assert len(mine) == 5
    n = 5 * len(FORECAST_MODELS)  # five days scored, five pending, per model
    assert meta["scored_rows"].value == n and meta["pending_rows"].value == n
    assert "wf_hit_rate" in meta["scoreboard"].value
    image = meta["live_record"].value
    assert image.startswith("![live record](data:image/png;base64,") and len(image) < 210_000
    assert (root / "artifacts" / "forecast_scoreboard" / "live_record.png").exists()
    # the walk-forward figures come from market.oos_predictions, pooled per model
    oos = resources["warehouse"].read("SELECT model, predicted_regime, true_regime FROM market.oos_predictions "
                                      "WHERE model = 'majority' AND true_regime IS NOT NULL")
    expected = float((oos["predicted_regime"] == oos["true_regime"]).mean())
    board = {row["model"]: row for row in meta["scoreboard_json"].value}
    assert board["majority"]["wf_hit_rate"] == pytest.approx(expected)
    assert board["majority"]["wf_predictions"] == oos.height
    assert (board["majority"]["scored"], board["majority"]["pending"]) == (5, 5)
    # the walk-forward Brier is model_metrics' pooled Brier over the same stored rows (one definition, halved)
    version = scope_for(resources["settings"].settings(), "SPY").targets_version
    with resources["warehouse"].connect() as con:
        pooled = metrics.metrics_table(wh.walk_forward_predictions(con, "SPY", version)).filter(
            pl.col("fold").is_null() & (pl.col("metric") == "brier"))
    for row in pooled.iter_rows(named=True):
        assert board[row["model"]]["wf_brier"] == pytest.approx(row["value"], rel=1e-12), row["model"]


def test_rerunning_a_day_replaces_its_rows(replay):
    resources = replay[0]
    assert forecast(resources, DAYS[-1]).success
    rows = resources["warehouse"].read("SELECT count(*) AS n FROM market.regime_forecasts WHERE as_of = ?", [DAYS[-1]])
    assert rows["n"].item() == len(FORECAST_MODELS)


def test_a_day_before_the_models_data_ends_is_refused_as_in_sample(replay):
    resources = replay[0]
    result = forecast(resources, dt.date(2018, 12, 13), raise_on_error=False)
    assert not result.success
    message = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert "was fit on data up to 2018-12-14, after 2018-12-13" in message and "in-sample" in message
    stored = resources["warehouse"].read("SELECT count(*) AS n FROM market.regime_forecasts WHERE as_of = '2018-12-13'")
    assert stored["n"].item() == 0


def test_a_session_without_a_stored_close_is_refused(replay):
    resources = replay[0]
    result = forecast(resources, dt.date(2019, 1, 2), raise_on_error=False)  # past the sample: never ingested
    message = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert not result.success and "has no SPY close for 2019-01-02" in message


def test_a_models_recent_ledger_rows_are_what_its_decision_rule_continues_from(replay):
    """`regime_forecasts` hands a model with REGIME_MIN_DWELL > 1 its last rows before the day (decision.next_decision
    then continues the rule); the query must give exactly the previous sessions, oldest first."""
    resources = replay[0]
    with resources["warehouse"].connect() as con:
        recent = wh.recent_forecasts(con, "SPY", "logistic", 5, DAYS[6], 3)
    assert recent["as_of"].to_list() == DAYS[3:6]
    stored = resources["warehouse"].read("SELECT as_of, predicted_regime FROM market.regime_forecasts "
                                         "WHERE model = 'logistic' ORDER BY as_of")
    assert recent["predicted_regime"].to_list() == stored["predicted_regime"].to_list()[3:6]
