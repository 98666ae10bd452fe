"""Ten consecutive trading days replayed on recorded prices: the ledger fills, scores, and the scoreboard adds up.

The bundled sample (S&P 500, to 2018-12-31) is served one session at a time, 2018-12-17 … 2018-12-31, across the
Christmas holiday, exactly as the daily job would: ohlcv → features → regime_forecasts, with the SPY labels refit
each day too so that rows get scored as their targets become labelled. The models are fit once on data up to
2018-12-14 (a reduced configuration, every model with a minimum dwell of 3 sessions), so every ledger row is out of
sample and every model continues its dwell rule from the ledger.
"""
from __future__ import annotations

import datetime as dt
import shutil

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
from regime_platform.models import BASELINES
from regime_platform_tests.conftest import materialize_ticker, platform_resources, ticker_instance

DAYS = calendar.sessions(dt.date(2018, 12, 17), dt.date(2018, 12, 31))
DWELL = 3
SETTLE = 2  # a target scores once the labels were fit through 2 sessions after it (the default waits weeks)
SCORED_DAYS = 3  # of the ten days' forecasts (h = 5), those whose target has SETTLE later sessions by 2018-12-31
DWELLED = [m for m in FORECAST_MODELS if m not in BASELINES]  # the baselines keep the plain argmax


def forecast(resources, day: dt.date, raise_on_error: bool = True):
    return dg.materialize([*model_assets, regime_forecasts], selection=[regime_forecasts.key],
                          partition_key=day.isoformat(), resources=resources, raise_on_error=raise_on_error,
                          instance=ticker_instance("SPY"))


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    root = tmp_path_factory.mktemp("ledger")
    resources = platform_resources(root, epochs=2, max_folds=2, min_dwell=DWELL, settle_sessions=SETTLE)
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
        assert r["model_version"].startswith(r["model"] + "-")
        # the non-price input it was made from: the regime known at as_of and the labels (fit through as_of) it came from
        assert r["known_regime"] in (0, 1) and r["known_labels_version"].startswith(f"jump-{r['as_of']}-")
    dwelled = rows.filter(pl.col("model").is_in(DWELLED))
    assert rows.filter(~pl.col("model").is_in(DWELLED))["decision_note"].null_count() == len(DAYS) * len(BASELINES)
    first = dwelled.filter(pl.col("as_of") == DAYS[0])["decision_note"].to_list()
    assert first and all(n == f"dwell {DWELL}: restarted at today's argmax (no stored row for the previous session 2018-12-14)"
               for n in first)
    assert all(n.startswith(f"dwell {DWELL}: continued from ") for n in dwelled.filter(pl.col("as_of") > DAYS[0])["decision_note"])


def test_realized_regimes_fill_in_from_the_labels_that_scored_them(replay):
    resources, _, snapshots, _ = replay
    rows = resources["warehouse"].read("SELECT * FROM market.regime_forecasts")
    scored = rows.filter(pl.col("status") == "scored")
    # labels through 2018-12-31 settle the targets up to 12-27 (two sessions before): the forecasts of 12-17 … 12-19
    # (targets 12-24, 12-26, 12-27); the others stay pending
    assert sorted(scored["as_of"].unique().to_list()) == DAYS[:SCORED_DAYS]
    assert scored.height == SCORED_DAYS * len(FORECAST_MODELS)
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
        assert len(mine) == SCORED_DAYS
    scored, pending = SCORED_DAYS * len(FORECAST_MODELS), (len(DAYS) - SCORED_DAYS) * len(FORECAST_MODELS)
    assert meta["scored_rows"].value == scored and meta["pending_rows"].value == pending
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
    assert (board["majority"]["scored"], board["majority"]["pending"]) == (SCORED_DAYS, len(DAYS) - SCORED_DAYS)
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


def copy_of(root, tmp_path):
    """A copy of the replayed warehouse and artifacts, so a test may change the ledger without touching the others."""
    shutil.copytree(root, tmp_path / "copy")
    return platform_resources(tmp_path / "copy", epochs=2, max_folds=2, min_dwell=DWELL, settle_sessions=SETTLE)


def test_the_ledger_continues_the_dwell_rule_from_its_stored_rows(replay):
    """Replayed day by day, each model's stored decisions are the dwell rule run over its stored probabilities."""
    from regime_platform.modeling.decision import apply_min_dwell

    rows = replay[0]["warehouse"].read("SELECT * FROM market.regime_forecasts ORDER BY model, as_of")
    for model in FORECAST_MODELS:
        mine = rows.filter(pl.col("model") == model)
        dwell = DWELL if model in DWELLED else 1
        assert mine["predicted_regime"].to_list() == apply_min_dwell(mine["probabilities"].to_list(), dwell).tolist()


def test_a_planted_streak_is_continued_and_a_broken_one_restarts(replay, tmp_path):
    """Plant the two sessions before the last: decision ``held`` while the argmax was also ``held``; today's argmax is
    ``a``. Continued, the rule keeps ``held`` (a streak of one); restarted it would say ``a``."""
    resources = copy_of(replay[1], tmp_path)
    rows = resources["warehouse"].read("SELECT model, probabilities FROM market.regime_forecasts WHERE as_of = ? "
                                       "AND model IN ?", [DAYS[-1], DWELLED])
    argmax = {m: max(range(len(p)), key=p.__getitem__) for m, p in rows.iter_rows()}
    with resources["warehouse"].connect() as con:
        for model, a in argmax.items():
            held = 1 - a
            con.execute("UPDATE market.regime_forecasts SET predicted_regime = ?, probabilities = ? WHERE model = ? "
                        "AND as_of IN (?, ?)", [held, [0.9, 0.1] if held == 0 else [0.1, 0.9], model, DAYS[-3], DAYS[-2]])
    assert forecast(resources, DAYS[-1]).success
    today = resources["warehouse"].read("SELECT model, predicted_regime, decision_note FROM market.regime_forecasts "
                                        "WHERE as_of = ? AND model IN ?", [DAYS[-1], DWELLED])
    for model, decided, note in today.iter_rows():
        assert decided == 1 - argmax[model], model
        assert note.startswith(f"dwell {DWELL}: continued from ")
    # the previous session's row made by another model version: the rule restarts at today's argmax, and says so
    with resources["warehouse"].connect() as con:
        con.execute("UPDATE market.regime_forecasts SET model_version = 'retired-version' WHERE as_of = ? AND model IN ?",
                    [DAYS[-2], DWELLED])
    assert forecast(resources, DAYS[-1]).success
    today = resources["warehouse"].read("SELECT model, predicted_regime, decision_note FROM market.regime_forecasts "
                                        "WHERE as_of = ? AND model IN ?", [DAYS[-1], DWELLED])
    for model, decided, note in today.iter_rows():
        assert decided == argmax[model] and "another model version, retired-version" in note, model


def test_rerunning_a_scored_session_keeps_its_scores_and_says_so(replay):
    resources = replay[0]
    query = "SELECT * FROM market.regime_forecasts WHERE as_of = ? ORDER BY model"
    before = resources["warehouse"].read(query, [DAYS[0]])
    assert (before["status"] == "scored").all()
    result = forecast(resources, DAYS[0])
    assert result.success
    assert resources["warehouse"].read(query, [DAYS[0]]).equals(before)
    kept = result.asset_materializations_for_node("regime_forecasts")[0].metadata["scored_rows_kept"].value
    assert f"SPY {DAYS[0]}: kept the {len(FORECAST_MODELS)} scored row(s)" in kept and "never rescored" in kept


def test_a_range_run_computes_the_known_regime_as_of_each_session(replay, tmp_path):
    """Forecast the ten sessions again as one range on a copy whose ledger is empty: the labels stored now were fit
    through 2018-12-31, after most of them, yet each row's known regime (and its labels version) is what that
    session's own daily run stored."""
    daily = replay[0]["warehouse"].read("SELECT as_of, model, known_regime, known_labels_version, predicted_regime "
                                        "FROM market.regime_forecasts ORDER BY as_of, model")
    resources = copy_of(replay[1], tmp_path)
    with resources["warehouse"].connect() as con:
        con.execute("DELETE FROM market.regime_forecasts")
    tags = {"dagster/asset_partition_range_start": DAYS[0].isoformat(),
            "dagster/asset_partition_range_end": DAYS[-1].isoformat()}
    assert dg.materialize([*model_assets, regime_forecasts], selection=[regime_forecasts.key], tags=tags,
                          resources=resources, instance=ticker_instance("SPY")).success
    ranged = resources["warehouse"].read("SELECT as_of, model, known_regime, known_labels_version, predicted_regime "
                                         "FROM market.regime_forecasts ORDER BY as_of, model")
    assert ranged.equals(daily)
    assert daily["known_labels_version"].n_unique() == len(DAYS)  # one fit per session, none of today's


def test_the_page_leads_with_todays_answer_and_the_change_check(replay):
    resources, root, _, results = replay
    meta = results[-1].asset_materializations_for_node("regime_forecasts")[0].metadata
    assert list(meta)[:2] == ["today", "today_plot/SPY"]
    line = meta["today"].value
    assert line.startswith("SPY 2018-12-31: known regime ") and "ensemble forecasts " in line and " for 2019-01-08 (t+5) p=" in line
    assert "runner-up " in line and "position " in line and "OFFLINE sample: ^GSPC standing in for SPY" in line
    table = meta["models"].value.splitlines()
    assert table[4].startswith("| ensemble |") and table[-1].startswith("| persistence (baseline) |")
    assert (root / "artifacts" / "regime_forecasts" / "SPY" / "today.png").exists()
    checks = {c.check_name: c for r in results for c in r.get_asset_check_evaluations() if c.check_name == "regime_changed"}
    assert checks["regime_changed"].severity == dg.AssetCheckSeverity.WARN


def test_a_model_whose_save_died_after_its_rows_is_named_by_the_ledger_that_still_uses_it(replay, tmp_path, monkeypatch):
    """The logistic model's asset is re-run on December's targets and killed as the IO manager saves the model, after
    its rows and fold records committed (issue #29): the ledger goes on with the previous logistic model, and says so
    on its page and in its log in the sentence no_leakage fails with, naming what to re-materialize."""
    from regime_platform.modeling import production

    resources = copy_of(replay[1], tmp_path)
    logistic = next(a for a in model_assets if a.key.to_user_string() == "logistic_model")
    assert materialize_ticker([walk_forward_targets], resources).success

    def dies_saving(self, directory, extra=None):
        raise RuntimeError("killed as the production model is saved")

    monkeypatch.setattr(production.ProductionModel, "save", dies_saving)
    assert not materialize_ticker([logistic], resources, raise_on_error=False).success
    monkeypatch.undo()
    result = forecast(resources, DAYS[-1])
    assert result.success
    behind = result.asset_materializations_for_node("regime_forecasts")[0].metadata[
        "models_behind_their_walk_forward"].value
    lines = behind.splitlines()
    assert len(lines) == 1, behind
    assert lines[0].startswith("- SPY's logistic rows come from its previous production model: the production model "
                               "in ") and lines[0].endswith("re-materialize logistic_model for SPY"), behind
    # the untouched replay names none
    meta = replay[3][-1].asset_materializations_for_node("regime_forecasts")[0].metadata
    assert meta["models_behind_their_walk_forward"].value == "none"
