"""forecasting: the daily forecast ledger (market.regime_forecasts, every ticker's rows in one session partition)
and its live scoreboard."""

import datetime as dt

import dagster as dg
import polars as pl

from regime_platform import calendar, figures, labels
from regime_platform import storage as wh
from regime_platform.defs.ingestion.assets import TickerSelection, selected_tickers
from regime_platform.defs.metadata import bullets, every_ticker_check, every_ticker_result, markdown_table
from regime_platform.defs.partitions import session_partitions
from regime_platform.defs.resources import RegimeSettings, Warehouse, artifact_directory
from regime_platform.features import macro as macro_inputs
from regime_platform.forecasting import figures as ledger_plots
from regime_platform.forecasting import headline, ledger
from regime_platform.modeling import fold_records
from regime_platform.modeling.targets_version import scope_for
from regime_platform.models import MODELS

# The production models the ledger records: every model asset, baselines included (asset keys, by name).
FORECAST_MODELS = list(MODELS)
EXTRA_ROWS = 5  # feature rows read beyond the longest window, so a short gap shows as a clear error


def score_ledger(con, settings) -> tuple[int, dict[str, str]]:
    """Score every pending row whose target's label has settled in its ticker's stored labels (S sessions after it
    for a generated labeler, DESIGN §3a); returns (rows scored, ticker → labels version)."""
    scored, versions = 0, {}
    for ticker in wh.ledger_tickers(con):
        truth = wh.labels_for_scoring(con, ticker)
        versions[ticker] = ledger.labels_version(truth)
        settle = settings.settle_sessions_for(truth["labeler"][0]) if truth.height else 0
        scored += wh.apply_scores(con, ledger.score_pending(wh.pending_forecasts(con, ticker), truth, versions[ticker],
                                                            settle))
    return scored, versions


def production_models(models: dict, ticker: str, scope) -> list:
    """The ticker's production model of every FORECAST_MODELS asset, each fit on the current targets version."""
    chosen = []
    for name in FORECAST_MODELS:
        fitted = models[f"{name}_model"].get(ticker)
        if fitted is None:
            raise ledger.LedgerError(f"no production {name} model of {ticker} is stored: materialize the modeling "
                                     f"assets for {ticker} (`make run` does).")
        refusal = fitted.version_refusal(ticker, scope.targets_version)
        if refusal:
            raise ledger.LedgerError(refusal)
        chosen.append(fitted)
    return chosen


def models_behind(warehouse: Warehouse, settings: RegimeSettings, scope, production: list) -> list[str]:
    """For each production model saved by an earlier run than the rows and fold records stored now (a run that
    stopped between the two), one sentence: the ledger forecasts with it meanwhile, and says so."""
    said = []
    with warehouse.connect() as con:
        for m in production:
            _, stored = fold_records.records_from_rows(wh.read_fold_records(con, scope.ticker, scope.targets_version,
                                                                            m.name))
            sentence = fold_records.saved_by_another_run(
                m.walk_forward_digest, stored, where=f"{m.name} for {scope.describe()}",
                rerun=f"{m.name}_model for {scope.ticker}",
                model_directory=str(artifact_directory(settings, f"{m.name}_model", scope.ticker)))
            if sentence:
                said.append(f"{m.name} rows come from its previous production model: {sentence}")
    return said


REGIME_CHANGED = "regime_changed"


def headline_metadata(warehouse: Warehouse, settings: RegimeSettings, tickers: list[str], sessions: list,
                      log) -> tuple[dict, list[dict]]:
    """The page's first entries — today's one line per ticker, the plot, the models' table — and every change of the
    headline model's forecast over ``sessions`` (the `regime_changed` check and the alert sensor read them)."""
    s = settings.settings()
    lines, tables, plots, changes, failed = [], [], {}, [], []
    for ticker in tickers:
        with warehouse.connect() as con:
            inputs = wh.headline_inputs(con, ticker)
            since = sessions[-1] - dt.timedelta(days=365 * headline.PLOT_YEARS)
            oos = wh.headline_oos(con, ticker, scope_for(s, ticker).targets_version, s.headline_model, s.horizon, since)
        try:
            today = headline.today(ticker, inputs, s.headline_model, s.horizon)
        except headline.HeadlineError as exc:
            failed.append(str(exc))
            log.warning(str(exc))
            continue
        names = labels.names_by_id(inputs["labels"])
        risk_off = headline.risk_off_of(inputs["labels"], inputs["prices"])
        lines.append(today.line())
        tables.append(f"**{ticker}** (the headline model first, baselines last)\n\n" + markdown_table(
            headline.model_table(inputs["ledger"], names, s.headline_model, s.horizon), float_digits=2))
        changes += headline.changes(inputs["ledger"], s.headline_model, sessions, names)
        frame = headline.plot_frame(oos, inputs["ledger"], s.headline_model, risk_off, since)
        prices = inputs["prices"].filter(pl.col("date") >= since)
        fig = ledger_plots.headline_figure(
            prices, frame, names, risk_off, f"{ticker}: {s.headline_model}'s forecast of the regime {s.horizon} sessions ahead "
            f"(walk-forward out-of-sample, then the ledger)\nprices: {today.source}")
        shown = figures.show(fig)
        path = wh.write_bytes_atomic(artifact_directory(settings, "regime_forecasts", ticker) / "today.png", shown.file)
        plots[f"today_plot/{ticker}"] = dg.MetadataValue.md(shown.markdown(f"{ticker} today"))
        plots[f"today_plot_png/{ticker}"] = dg.MetadataValue.path(str(path))
    metadata = {"today": dg.MetadataValue.md("\n\n".join(lines + failed) or "no forecast"), **plots,
                "models": dg.MetadataValue.md("\n\n".join(tables) or "none"),
                "regime_changes": dg.MetadataValue.json(changes)}
    return metadata, changes


def regime_changed_result(changes: list[dict], model: str) -> dg.AssetCheckResult:
    said = [f"{c['ticker']} {c['session']}: {model} now forecasts {c['new_regime']} (p={c['probability']:.2f}), "
            f"{c['old_regime']} on {c['previous_session']}" for c in changes]
    return dg.AssetCheckResult(
        check_name=REGIME_CHANGED, passed=not changes, severity=dg.AssetCheckSeverity.WARN,
        description=("; ".join(said) + ".") if said else f"{model}'s forecast regime is the previous session's.",
        metadata={"changes": dg.MetadataValue.json(changes)})


@dg.asset(
    group_name="forecasting",
    partitions_def=session_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),  # like ohlcv and features: the daily job has one policy
    ins={f"{m}_model": dg.AssetIn(key=f"{m}_model", partition_mapping=dg.AllPartitionMapping())
         for m in FORECAST_MODELS},
    deps=[dg.AssetKey("features"), dg.AssetKey("macro"),
          dg.AssetDep("regime_labels", partition_mapping=dg.AllPartitionMapping())],
    pool="duckdb",
    kinds={"duckdb"},
    check_specs=[every_ticker_check("every_ticker_forecast", "regime_forecasts",
                                    "without ledger rows for the sessions of this run"),
                 dg.AssetCheckSpec(REGIME_CHANGED, asset="regime_forecasts",
                                   description="WARN when the headline model's (REGIME_HEADLINE_MODEL) forecast regime "
                                               "differs from its previous session's; the alert sensor posts it.")],
    description="The forecast ledger: after the close of session t, every ticker's production models and both "
                "baselines write their probabilities for t+h with the regime known at t and the labels it came from "
                "(computed from data through t, for every session of a range); pending until the label at t+h has "
                "settled (REGIME_SETTLE_SESSIONS later sessions for a generated labeler), then scored once. Re-running "
                "a day replaces its pending rows and keeps its scored ones; a "
                "session not yet closed, or a model fit on data after t, is refused. First on the page: today's "
                "regime in one line per ticker.",
)
def regime_forecasts(context: dg.AssetExecutionContext, config: TickerSelection, warehouse: Warehouse,
                     settings: RegimeSettings, **models) -> dg.MaterializeResult:
    s = settings.settings()
    window = context.partition_key_range  # one session normally; a range is forecast session by session
    sessions = calendar.sessions(window.start, window.end)
    refusal = ledger.not_closed_refusal(sessions[-1])
    if refusal:
        raise ledger.LedgerError(refusal)
    if s.headline_model not in FORECAST_MODELS:
        raise ledger.LedgerError(f"REGIME_HEADLINE_MODEL={s.headline_model} is not a model of the ledger: set it to "
                                 f"one of {', '.join(FORECAST_MODELS)}.")
    written, failed, known_now, sources, kept, behind = [], {}, {}, {}, [], []
    for ticker in selected_tickers(config, settings):
        scope = scope_for(s, ticker)
        try:
            production = production_models(models, ticker, scope)
            for m in production:  # refuse the whole range before writing anything
                refusal = ledger.in_sample_refusal(m, sessions[0])
                if refusal:
                    raise ledger.LedgerError(refusal)
            for sentence in models_behind(warehouse, settings, scope, production):
                behind.append(f"{ticker}'s {sentence}")
                context.log.warning(behind[-1])
            # models fit with REGIME_MACRO=auto read macro features: computed here exactly as for their fit, from
            # the market.macro rows usable at each session, over enough earlier sessions for their trailing windows
            used_macro = sorted({f for m in production for f in m.feature_names if f in macro_inputs.MACRO_FEATURES})
            lookback = max(m.window for m in production) + EXTRA_ROWS + (
                macro_inputs.HISTORY_SESSIONS if used_macro else 0)
            with warehouse.connect() as con:
                frame = wh.read_labeler_frame(con, ticker)
                stored_labels = wh.read_regime_labels(con, ticker)  # this run's labels step: its fit, not a second
                macro_rows = wh.read_macro(con, macro_inputs.MACRO_SERIES) if used_macro else None
            for as_of in sessions:
                with warehouse.connect() as con:
                    features, price_source = wh.ledger_inputs(con, ticker, as_of, lookback)
                if used_macro:
                    features = macro_inputs.with_macro(features, macro_rows, used_macro)
                if price_source is None:
                    raise ledger.LedgerError(f"market.ohlcv has no {ticker} close for {as_of}: materialize ohlcv and "
                                             "features for that session first (the daily job does them in one run).")
                # as of this session: the stored labels only when they were fit through it, else a fit through it
                known = labels.known_regime_at(frame, s.user_labels_path(ticker), scope.labeler, s.label_lag, as_of,
                                               stored_labels)
                if known is None:
                    raise ledger.LedgerError(
                        f"no regime of {ticker} is known at {as_of} (the persistence baseline needs it): your labels "
                        f"file {s.user_labels_path(ticker)} must reach {s.label_lag} session(s) before {as_of} "
                        f"(REGIME_LABEL_LAG={s.label_lag}).")
                with warehouse.connect() as con:  # models with a minimum dwell continue their rule from the ledger
                    history = {m.name: wh.recent_forecasts(con, ticker, m.name, m.horizon, as_of, m.min_dwell)
                               for m in production if m.min_dwell > 1}
                rows = ledger.forecast_rows(ticker, production, as_of, features, known, price_source, history)
                with warehouse.connect() as con:
                    stayed = wh.write_forecasts(con, ticker, as_of, rows)
                if stayed.height:
                    kept.append(f"{ticker} {as_of}: kept the {stayed.height} scored row(s) of "
                                f"{', '.join(stayed['model'].to_list())} as stored (a scored forecast is never "
                                "rescored or rewritten); the pending ones were replaced.")
                    context.log.info(kept[-1])
                written.append(rows)
                known_now[ticker], sources[ticker] = known.regime, price_source
        except ledger.LedgerError as exc:
            failed[ticker] = f"{ticker}: {exc}"
            context.log.error(f"no forecast: {failed[ticker]}")
    if not written:
        raise ledger.LedgerError(" ".join(failed.values()))
    with warehouse.connect() as con:
        newly_scored, versions = score_ledger(con, s)
        pending, total = wh.ledger_counts(con)
    answer, changes = headline_metadata(warehouse, settings, sorted(known_now), sessions, context.log)
    for line in answer["today"].value.split("\n\n"):
        context.log.info(f"today: {line}")
    last = pl.concat(written).filter(pl.col("as_of") == sessions[-1])
    shown = last.select("ticker", "model", "target_date", "predicted_regime",
                        pl.col("probabilities").list.eval(pl.element().round(2)).cast(pl.List(pl.Utf8))
                        .list.join(", ").alias("probabilities"), "known_regime", "model_version", "decision_note")
    return dg.MaterializeResult(metadata={
        **answer,
        "as_of": str(sessions[-1]) if len(sessions) == 1 else f"{sessions[0]} … {sessions[-1]}",
        "tickers": ", ".join(sorted(known_now)),
        "target_date": str(last["target_date"][0]),
        "rows_written": sum(r.height for r in written),
        "scored_rows_kept": bullets(kept),
        "models_behind_their_walk_forward": bullets(behind),
        "price_source": dg.MetadataValue.json(sources),
        "known_regime_at_as_of": dg.MetadataValue.json(known_now),
        "forecasts": dg.MetadataValue.md(markdown_table(shown)),
        "failed_tickers": bullets(list(failed.values())),
        "rows_scored_now": newly_scored,
        "labels_version": dg.MetadataValue.json(versions),
        "pending_rows": int(pending),
        "dagster/row_count": int(total),
    }, check_results=[every_ticker_result("every_ticker_forecast", failed, sorted(known_now), "forecast"),
                      regime_changed_result(changes, s.headline_model)])


@dg.asset(
    group_name="forecasting",
    deps=[regime_forecasts, dg.AssetDep("regime_labels", partition_mapping=dg.AllPartitionMapping())],
    pool="duckdb",
    kinds={"duckdb"},
    description="The live record of the ledger per ticker and model — hit rate, macro-F1, Brier, scored rows — next "
                "to the same ticker's and model's pooled walk-forward figures (its current targets version) from "
                "market.oos_predictions, with a plot over time.",
)
def forecast_scoreboard(context: dg.AssetExecutionContext, warehouse: Warehouse,
                        settings: RegimeSettings) -> dg.MaterializeResult:
    s = settings.settings()
    with warehouse.connect() as con:
        newly_scored, versions = score_ledger(con, s)
        ledger_rows = wh.read_ledger(con)
        tickers = sorted(set(ledger_rows["ticker"].to_list()))
        oos = wh.read_oos_pooled(con, {t: scope_for(s, t).targets_version for t in tickers})
    board = ledger.scoreboard(ledger_rows, oos)
    record = ledger.live_record(ledger_rows)
    live = figures.show(ledger_plots.live_record_figure(record, board))
    path = wh.write_bytes_atomic(artifact_directory(settings, "forecast_scoreboard") / "live_record.png", live.file)
    if ledger_rows.is_empty():
        context.log.warning("the ledger is empty: materialize regime_forecasts for the last closed session first.")
    metadata = {
        "tickers": ", ".join(tickers) or "none",
        "scoreboard": dg.MetadataValue.md(markdown_table(board.drop("first_as_of", "last_as_of"))),
        "live_record": dg.MetadataValue.md(live.markdown("live record")),
        "live_record_png": dg.MetadataValue.path(str(path)),
        "rows_scored_now": newly_scored,
        "labels_version": dg.MetadataValue.json(versions),
        "scored_rows": int((ledger_rows["status"] == ledger.SCORED).sum()),
        "pending_rows": int((ledger_rows["status"] == ledger.PENDING).sum()),
        "scoreboard_json": dg.MetadataValue.json(ledger.jsonable(board)),
    }
    for row in board.iter_rows(named=True):  # plain floats: the UI charts them over time
        if row["scored"]:
            metadata[f"live_hit_rate/{row['ticker']}/{row['model']}"] = float(row["live_hit_rate"])
    return dg.MaterializeResult(metadata=metadata)
