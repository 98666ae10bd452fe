"""forecasting: the daily forecast ledger (market.regime_forecasts) and its live scoreboard."""

import dagster as dg
import polars as pl

from regime_platform import calendar, figures
from regime_platform import storage as wh
from regime_platform.defs.metadata import markdown_table
from regime_platform.defs.partitions import session_partitions
from regime_platform.defs.resources import RegimeSettings, Warehouse, artifact_directory
from regime_platform.forecasting import figures as ledger_plots
from regime_platform.forecasting import ledger
from regime_platform.models import MODELS

# The production models the ledger records: every model asset, baselines included (asset keys, by name).
FORECAST_MODELS = list(MODELS)
EXTRA_ROWS = 5  # feature rows read beyond the longest window, so a short gap shows as a clear error


def score_ledger(con) -> tuple[int, str]:
    """Score every pending row whose target date the stored labels now cover; returns (rows scored, version)."""
    labels = wh.labels_for_scoring(con)
    version = ledger.labels_version(labels)
    scored = ledger.score_pending(wh.pending_forecasts(con), labels, version)
    return wh.apply_scores(con, scored), version


@dg.asset(
    group_name="forecasting",
    partitions_def=session_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),  # like ohlcv and features: the daily job has one policy
    ins={f"{m}_model": dg.AssetIn(key=f"{m}_model") for m in FORECAST_MODELS},
    deps=[dg.AssetKey("features"), dg.AssetKey("regime_labels")],
    pool="duckdb",
    kinds={"duckdb"},
    description="The forecast ledger: after the close of session t, every production model and both baselines "
                "write their probabilities for t+h (pending until the labels cover t+h, then scored). Re-running "
                "a day replaces its rows; a session not yet closed, or a model fit on data after t, is refused.",
)
def regime_forecasts(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: RegimeSettings,
                     **models) -> dg.MaterializeResult:
    window = context.partition_key_range  # one session normally; a range is forecast session by session
    sessions = calendar.sessions(window.start, window.end)
    refusal = ledger.not_closed_refusal(sessions[-1])
    if refusal:
        raise ledger.LedgerError(refusal)
    production = [models[f"{m}_model"] for m in FORECAST_MODELS]
    for m in production:  # refuse the whole range before writing anything
        refusal = ledger.in_sample_refusal(m, sessions[0])
        if refusal:
            raise ledger.LedgerError(refusal)
    lookback = max(m.window for m in production) + EXTRA_ROWS
    written = []
    for as_of in sessions:
        with warehouse.connect() as con:
            features, price_source, known = wh.ledger_inputs(con, settings.ticker, as_of, lookback)
        if price_source is None:
            raise ledger.LedgerError(f"market.ohlcv has no close for {as_of}: materialize ohlcv and features for "
                                     "that session first (the daily job does them in one run).")
        if known is None:
            raise ledger.LedgerError(f"market.regime_labels has no regime known at {as_of} (the persistence "
                                     "baseline needs it): materialize regime_labels after features for that session.")
        with warehouse.connect() as con:  # models with a minimum dwell continue their decision rule from the ledger
            history = {m.name: wh.recent_forecasts(con, m.name, m.horizon, as_of, m.min_dwell)
                       for m in production if m.min_dwell > 1}
        rows = ledger.forecast_rows(production, as_of, features, known, price_source, history)
        with warehouse.connect() as con:
            wh.write_forecasts(con, as_of, rows)
        written.append(rows)
    with warehouse.connect() as con:
        newly_scored, version = score_ledger(con)
        pending, total = wh.ledger_counts(con)
    rows = written[-1]
    shown = rows.select("model", "target_date", "predicted_regime",
                        pl.col("probabilities").list.eval(pl.element().round(3)).cast(pl.List(pl.Utf8))
                        .list.join(", ").alias("probabilities"), "model_version")
    return dg.MaterializeResult(metadata={
        "as_of": str(sessions[-1]) if len(sessions) == 1 else f"{sessions[0]} … {sessions[-1]}",
        "target_date": str(rows["target_date"][0]),
        "rows_written": sum(r.height for r in written),
        "price_source": rows["price_source"][0],
        "known_regime_at_as_of": known,
        "forecasts": dg.MetadataValue.md(markdown_table(shown)),
        "rows_scored_now": newly_scored,
        "labels_version": version,
        "pending_rows": int(pending),
        "dagster/row_count": int(total),
    })


@dg.asset(
    group_name="forecasting",
    deps=[regime_forecasts, dg.AssetKey("regime_labels")],
    pool="duckdb",
    kinds={"duckdb"},
    description="The live record of the ledger per model — hit rate, macro-F1, Brier, scored rows — next to the "
                "same model's pooled walk-forward figures from market.oos_predictions, with a plot over time.",
)
def forecast_scoreboard(context: dg.AssetExecutionContext, warehouse: Warehouse,
                        settings: RegimeSettings) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        newly_scored, version = score_ledger(con)
        ledger_rows = wh.read_ledger(con)
        oos = wh.read_oos_pooled(con)
    board = ledger.scoreboard(ledger_rows, oos)
    record = ledger.live_record(ledger_rows)
    live = figures.show(ledger_plots.live_record_figure(record, board))
    path = wh.write_bytes_atomic(artifact_directory(settings, "forecast_scoreboard") / "live_record.png", live.file)
    if ledger_rows.is_empty():
        context.log.warning("the ledger is empty: materialize regime_forecasts for the last closed session first.")
    metadata = {
        "scoreboard": dg.MetadataValue.md(markdown_table(board.drop("first_as_of", "last_as_of"))),
        "live_record": dg.MetadataValue.md(live.markdown("live record")),
        "live_record_png": dg.MetadataValue.path(str(path)),
        "rows_scored_now": newly_scored,
        "labels_version": version,
        "scored_rows": int((ledger_rows["status"] == ledger.SCORED).sum()),
        "pending_rows": int((ledger_rows["status"] == ledger.PENDING).sum()),
        "scoreboard_json": dg.MetadataValue.json(ledger.jsonable(board)),
    }
    for row in board.iter_rows(named=True):  # plain floats: the UI charts them over time
        if row["scored"]:
            metadata[f"live_hit_rate/{row['model']}"] = float(row["live_hit_rate"])
    return dg.MaterializeResult(metadata=metadata)
