"""forecasting: the daily forecast ledger (market.regime_forecasts, every ticker's rows in one session partition)
and its live scoreboard."""

import dagster as dg
import polars as pl

from regime_platform import calendar, figures, labels
from regime_platform import storage as wh
from regime_platform.defs.ingestion.assets import TickerSelection, selected_tickers
from regime_platform.defs.metadata import bullets, every_ticker_check, every_ticker_result, markdown_table
from regime_platform.defs.partitions import session_partitions
from regime_platform.defs.resources import RegimeSettings, Warehouse, artifact_directory
from regime_platform.forecasting import figures as ledger_plots
from regime_platform.forecasting import ledger
from regime_platform.modeling.targets_version import scope_for
from regime_platform.models import MODELS

# The production models the ledger records: every model asset, baselines included (asset keys, by name).
FORECAST_MODELS = list(MODELS)
EXTRA_ROWS = 5  # feature rows read beyond the longest window, so a short gap shows as a clear error


def score_ledger(con) -> tuple[int, dict[str, str]]:
    """Score every pending row whose target date its ticker's stored labels now cover; returns (rows scored,
    ticker → labels version)."""
    scored, versions = 0, {}
    for ticker in wh.ledger_tickers(con):
        truth = wh.labels_for_scoring(con, ticker)
        versions[ticker] = ledger.labels_version(truth)
        scored += wh.apply_scores(con, ledger.score_pending(wh.pending_forecasts(con, ticker), truth, versions[ticker]))
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


@dg.asset(
    group_name="forecasting",
    partitions_def=session_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),  # like ohlcv and features: the daily job has one policy
    ins={f"{m}_model": dg.AssetIn(key=f"{m}_model", partition_mapping=dg.AllPartitionMapping())
         for m in FORECAST_MODELS},
    deps=[dg.AssetKey("features"), dg.AssetDep("regime_labels", partition_mapping=dg.AllPartitionMapping())],
    pool="duckdb",
    kinds={"duckdb"},
    check_specs=[every_ticker_check("every_ticker_forecast", "regime_forecasts",
                                    "without ledger rows for the sessions of this run")],
    description="The forecast ledger: after the close of session t, every ticker's production models and both "
                "baselines write their probabilities for t+h (pending until the ticker's labels cover t+h, then "
                "scored). The regime known at t is computed from data through t. Re-running a day replaces its "
                "rows; a session not yet closed, or a model fit on data after t, is refused.",
)
def regime_forecasts(context: dg.AssetExecutionContext, config: TickerSelection, warehouse: Warehouse,
                     settings: RegimeSettings, **models) -> dg.MaterializeResult:
    s = settings.settings()
    window = context.partition_key_range  # one session normally; a range is forecast session by session
    sessions = calendar.sessions(window.start, window.end)
    refusal = ledger.not_closed_refusal(sessions[-1])
    if refusal:
        raise ledger.LedgerError(refusal)
    written, failed, known_now, sources = [], {}, {}, {}
    for ticker in selected_tickers(config, settings):
        scope = scope_for(s, ticker)
        try:
            production = production_models(models, ticker, scope)
            for m in production:  # refuse the whole range before writing anything
                refusal = ledger.in_sample_refusal(m, sessions[0])
                if refusal:
                    raise ledger.LedgerError(refusal)
            lookback = max(m.window for m in production) + EXTRA_ROWS
            with warehouse.connect() as con:
                frame = wh.read_labeler_frame(con, ticker)
            for as_of in sessions:
                with warehouse.connect() as con:
                    features, price_source = wh.ledger_inputs(con, ticker, as_of, lookback)
                if price_source is None:
                    raise ledger.LedgerError(f"market.ohlcv has no {ticker} close for {as_of}: materialize ohlcv and "
                                             "features for that session first (the daily job does them in one run).")
                known = labels.known_regime_at(frame, s.user_labels_path(ticker), scope.labeler, s.label_lag, as_of)
                if known is None:
                    raise ledger.LedgerError(f"no regime of {ticker} is known at {as_of} (the persistence baseline "
                                             f"needs it): your labels file {s.user_labels_path(ticker)} must cover it.")
                with warehouse.connect() as con:  # models with a minimum dwell continue their rule from the ledger
                    history = {m.name: wh.recent_forecasts(con, ticker, m.name, m.horizon, as_of, m.min_dwell)
                               for m in production if m.min_dwell > 1}
                rows = ledger.forecast_rows(ticker, production, as_of, features, known, price_source, history)
                with warehouse.connect() as con:
                    wh.write_forecasts(con, ticker, as_of, rows)
                written.append(rows)
                known_now[ticker], sources[ticker] = known, price_source
        except ledger.LedgerError as exc:
            failed[ticker] = f"{ticker}: {exc}"
            context.log.error(f"no forecast: {failed[ticker]}")
    if not written:
        raise ledger.LedgerError(" ".join(failed.values()))
    with warehouse.connect() as con:
        newly_scored, versions = score_ledger(con)
        pending, total = wh.ledger_counts(con)
    last = pl.concat(written).filter(pl.col("as_of") == sessions[-1])
    shown = last.select("ticker", "model", "target_date", "predicted_regime",
                        pl.col("probabilities").list.eval(pl.element().round(3)).cast(pl.List(pl.Utf8))
                        .list.join(", ").alias("probabilities"), "model_version")
    return dg.MaterializeResult(metadata={
        "as_of": str(sessions[-1]) if len(sessions) == 1 else f"{sessions[0]} … {sessions[-1]}",
        "tickers": ", ".join(sorted(known_now)),
        "target_date": str(last["target_date"][0]),
        "rows_written": sum(r.height for r in written),
        "price_source": dg.MetadataValue.json(sources),
        "known_regime_at_as_of": dg.MetadataValue.json(known_now),
        "forecasts": dg.MetadataValue.md(markdown_table(shown)),
        "failed_tickers": bullets(list(failed.values())),
        "rows_scored_now": newly_scored,
        "labels_version": dg.MetadataValue.json(versions),
        "pending_rows": int(pending),
        "dagster/row_count": int(total),
    }, check_results=[every_ticker_result("every_ticker_forecast", failed, sorted(known_now), "forecast")])


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
        newly_scored, versions = score_ledger(con)
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
