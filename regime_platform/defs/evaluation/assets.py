"""evaluation: metrics, regime-change timing, an economic backtest and a comparison, each with its plots inline.

Thin: load stored rows (named queries in warehouse.py), call the domain (metrics, change_timing, backtest,
comparison, audit, plots), write one table per asset in one transaction, and hand the JSON and PNG files to
the artifact IO manager (data/artifacts/<asset>/, each file written to a temporary name and renamed).
"""

from typing import Optional

import dagster as dg
import numpy as np
import polars as pl

from regime_platform import storage as wh
from regime_platform.defs.ingestion.macro import macro
from regime_platform.defs.metadata import markdown_table, report_figure
from regime_platform.defs.modeling.assets import model_assets
from regime_platform.defs.partitions import ticker_asset, ticker_check
from regime_platform.defs.resources import RegimeSettings, Warehouse, artifact_directory
from regime_platform.defs.scope import TickerScope, ticker_scope
from regime_platform.evaluation import backtest as bt
from regime_platform.evaluation import cash, change_timing, comparison, intervals, metrics, paired
from regime_platform.evaluation import figures as plots
from regime_platform.evaluation.horizon import headline_horizon
from regime_platform.evaluation.versions import pooling_refusal
from regime_platform.labels import names_by_id
from regime_platform.models import BASELINES
from regime_platform.storage.reports import Report

GROUP = "evaluation"


# --- helpers: turn figures and frames into what a person reads in the UI ---------------------------------

def tables_first(report: Report, meta: dict) -> dict:
    """The tables and numbers first, then each plot and its path: a person reads the verdict before the pictures."""
    figures = {key for name in report.figures for key in (name, f"{name}_path")}
    return {k: v for k, v in meta.items() if k not in figures} | {k: v for k, v in meta.items() if k in figures}


def mark_baselines(frame: pl.DataFrame, column: str = "model") -> pl.DataFrame:
    """Append ' (baseline)' / ' (rule)' to the names a person should not mistake for a model."""
    return frame.with_columns(
        pl.when(pl.col(column).is_in(list(BASELINES))).then(pl.col(column) + " (baseline)")
        .when(pl.col(column).is_in(list(bt.RULES))).then(pl.col(column) + " (rule)")
        .otherwise(pl.col(column)).alias(column))


def floats(prefix: str, frame: pl.DataFrame, key: str, column: str) -> dict[str, float]:
    """Plain floats (charted over time by the UI) named `<prefix>_<key value>`."""
    return {f"{prefix}_{k}": float(v) for k, v in zip(frame[key], frame[column]) if v is not None and np.isfinite(v)}


def evaluated_predictions(warehouse: Warehouse, scope: TickerScope) -> pl.DataFrame:
    """The ticker's out-of-sample rows of the current targets version — refused, in one sentence, when some model's
    rows belong to another version only (evaluation never pools versions)."""
    with warehouse.connect() as con:
        refusal = pooling_refusal(wh.stored_versions(con, "oos_predictions", scope.ticker), scope.ticker,
                                  scope.targets_version)
        if refusal:
            raise ValueError(refusal)
        return wh.walk_forward_predictions(con, scope.ticker, scope.targets_version)


def scope_metadata(scope: TickerScope) -> dict:
    """What every per-ticker evaluation page leads with."""
    return {"ticker": scope.ticker, "targets_version": scope.targets_version}


# --- model_metrics -------------------------------------------------------------------------------------

@ticker_asset(
    group_name=GROUP,
    deps=model_assets,
    io_manager_key="artifacts",
    kinds={"duckdb", "scikitlearn"},
    description="Per model (baselines included), horizon and fold, and pooled over folds: accuracy, balanced "
                "accuracy, macro-F1, per-class precision/recall/F1/support, Brier, log loss, calibration error, "
                "transition recall per direction, median regime-change lead and share of changes called, 90 % "
                "block-bootstrap intervals of macro-F1 and balanced accuracy — into market.model_metrics and "
                "metrics.json; confusion matrices, forecast vs truth and a reliability diagram inline.",
)
def model_metrics(context: dg.AssetExecutionContext, warehouse: Warehouse,
                  settings: RegimeSettings) -> dg.Output[Report]:
    scope = ticker_scope(context, settings)
    oos = evaluated_predictions(warehouse, scope)
    with warehouse.connect() as con:
        prices = wh.adj_close_history(con, scope.ticker)
        labels = wh.regime_history(con, scope.ticker)
    timing = change_timing.timing_table(oos)
    table = metrics.metrics_table(oos, change_timing.pooled_metrics(timing), settings.settings().seed)
    with warehouse.connect() as con:
        wh.replace_evaluation(con, "model_metrics", scope.ticker, scope.targets_version, table)

    h = headline_horizon(oos["horizon"], scope.horizon)
    names = names_by_id(labels)
    scored = metrics.scored_rows(oos).filter(pl.col("horizon") == h)
    k = metrics.n_classes(scored)
    models = sorted(scored["model"].unique().to_list(), key=lambda m: (metrics.is_baseline(m), m))
    directory = artifact_directory(settings, "model_metrics", scope.ticker)
    report = Report(documents={"metrics": metrics_document(table, h)})
    meta: dict = scope_metadata(scope)
    meta |= report_figure(report, directory, "confusion_matrices", plots.confusion_matrices(
        metrics.confusion_by_model(scored, models, k), names, f"Confusion matrices, h = {h} (rows: true regime)"))
    grid = metrics.forecast_grid(scored, models)
    span = prices.filter(pl.col("date").is_between(grid["target_date"].min(), grid["target_date"].max()))
    meta |= report_figure(report, directory, "forecast_vs_truth", plots.forecast_vs_truth(
        grid["target_date"].to_list(), grid["true_regime"].to_numpy(), {m: grid[m].to_numpy() for m in models},
        span["date"].to_list(), span["adj_close"].to_numpy(), names,
        f"{scope.ticker}: forecast vs true regime, h = {h} (by target date; price below)"))
    meta |= report_figure(report, directory, "reliability", plots.reliability_diagram(
        metrics.reliability_by_model(scored, models, k), f"Reliability of the chosen regime's probability, h = {h}"))

    summary = metrics.pooled_summary(table, h)
    shown = mark_baselines(summary.drop("baseline"))
    meta |= {
        "horizon": h,
        "models": len(models),
        "scored_forecasts": scored.height,
        "summary": dg.MetadataValue.md(f"Pooled over folds, h = {h}, sorted by macro-F1; baselines marked. "
                                       + intervals.method_sentence() + "\n\n" + markdown_table(shown, 3)),
        "metrics_json": dg.MetadataValue.path(str(report.document_path(directory, "metrics"))),
        **floats("macro_f1", summary, "model", "macro_f1"),
        **floats("balanced_accuracy", summary, "model", "balanced_accuracy"),
    }
    return dg.Output(report, metadata=tables_first(report, meta))


def metrics_document(table: pl.DataFrame, horizon: int) -> dict:
    """metrics.json: {"headline_horizon": h, "models": {model: {horizon: {"pooled": {...}, "folds": {fold: {...}}}}}}."""
    out: dict = {"headline_horizon": horizon, "models": {}}
    for r in table.iter_rows(named=True):
        slot = out["models"].setdefault(r["model"], {}).setdefault(str(r["horizon"]), {"pooled": {}, "folds": {}})
        target = slot["pooled"] if r["fold"] is None else slot["folds"].setdefault(str(r["fold"]), {})
        target[r["metric"]] = r["value"]
    return out


@ticker_check(asset=model_metrics, name="not_collapsed",
              description="Per model, judged against the truth: WARN when one regime takes ≥ 90 % of its forecasts "
                          "while the other regimes are forecast less than half as often as they occur (97 % "
                          "against a true 89 % warns), ERROR at ≥ 98 % — the original specification's "
                          "85 %-accuracy collapse.")
def not_collapsed(context: dg.AssetCheckExecutionContext, warehouse: Warehouse,
                  settings: RegimeSettings) -> dg.AssetCheckResult:
    oos = evaluated_predictions(warehouse, ticker_scope(context, settings))
    found = metrics.collapse_findings(metrics.scored_rows(oos))
    worst = "ERROR" if (found["verdict"] == "ERROR").any() else ("WARN" if (found["verdict"] == "WARN").any() else "OK")
    flagged = found.filter(pl.col("verdict") != "OK")
    sentences = [f"{r['model']} (h={r['horizon']}) forecasts regime {r['top_class']} {r['forecast_share']:.0%} of the "
                 f"time against a true share of {r['true_share']:.0%}." for r in flagged.iter_rows(named=True)]
    return dg.AssetCheckResult(
        passed=worst == "OK",
        severity=dg.AssetCheckSeverity.ERROR if worst == "ERROR" else dg.AssetCheckSeverity.WARN,
        description=" ".join(sentences) or "No model forecasts one regime almost always.",
        metadata={"models": dg.MetadataValue.md(markdown_table(mark_baselines(found), 3)),
                  "collapsed_models": flagged.height})


# --- regime_change_timing ------------------------------------------------------------------------------

@ticker_asset(
    group_name=GROUP,
    deps=model_assets,
    io_manager_key="artifacts",
    kinds={"duckdb"},
    description="For every change of the true regime in the out-of-sample span and every model: the first "
                "session the model forecast the new regime, the call that held (lead < 0 = early, 'never' "
                "allowed) and whether an early call flipped back — into market.regime_change_timing; "
                "persistence is the reference.",
)
def regime_change_timing(context: dg.AssetExecutionContext, warehouse: Warehouse,
                         settings: RegimeSettings) -> dg.Output[Report]:
    scope = ticker_scope(context, settings)
    oos = evaluated_predictions(warehouse, scope)
    timing = change_timing.timing_table(oos)
    if timing.is_empty():  # a finding, not a failure: nothing to time (a short span, or a calm one)
        with warehouse.connect() as con:
            wh.clear_scoped(con, "regime_change_timing", scope.key)
        sentence = (f"The true regime of {scope.ticker} never changes inside the out-of-sample span "
                    f"{oos['target_date'].min()} … {oos['target_date'].max()}: there is no change to time (a longer "
                    "history gives the walk-forward more test years).")
        context.log.warning(sentence)
        report = Report(documents={"regime_change_timing": {"headline_horizon": scope.horizon, "summary": [],
                                                            "changes": [], "note": sentence}})
        return dg.Output(report, metadata=scope_metadata(scope) | {"horizon": scope.horizon, "changes": 0,
                                                                   "summary": dg.MetadataValue.md(sentence)})
    with warehouse.connect() as con:
        wh.replace_evaluation(con, "regime_change_timing", scope.ticker, scope.targets_version, timing)
    h = headline_horizon(oos["horizon"], scope.horizon)
    summary = change_timing.lead_summary(timing).filter(pl.col("horizon") == h).drop("horizon")
    directory = artifact_directory(settings, "regime_change_timing", scope.ticker)
    report = Report(documents={"regime_change_timing": {"headline_horizon": h, "summary": summary.to_dicts(),
                                                        "changes": timing.to_dicts()}})
    meta = report_figure(report, directory, "change_timing", plots.change_timing_plot(
        timing.filter(pl.col("horizon") == h), title=f"{scope.ticker}: regime-change timing, h = {h}: sessions from "
                                                      "each true change to the call of the new regime that held"))
    meta = scope_metadata(scope) | meta
    meta |= {"horizon": h, "changes": int(timing.filter(pl.col("horizon") == h)["change_date"].n_unique()),
             "summary": dg.MetadataValue.md(
                 "Median lead in sessions (negative = early; a change never called counts as a miss, ranked after "
                 "every call, so the median is empty once more than half are missed), the share of changes called; "
                 "persistence is the reference.\n\n" + markdown_table(mark_baselines(summary), 3)),
             **floats("median_lead", summary, "model", "median_lead")}
    return dg.Output(report, metadata=tables_first(report, meta))


# --- backtest --------------------------------------------------------------------------------------------

class BacktestConfig(dg.Config):
    cost_bp: float = bt.DEFAULT_COST_BP
    """Cost of one switch (into or out of the market), in basis points of equity."""
    risk_off_regime: Optional[int] = None
    """Regime id to stay flat in, for every fold (set it for a user's labels file whose regimes you know);
    empty = each fold's regime with the lowest mean daily return in its training span."""


@ticker_asset(
    group_name=GROUP,
    deps=[*model_assets, dg.AssetDep(macro, partition_mapping=dg.AllPartitionMapping())],
    io_manager_key="artifacts",
    kinds={"duckdb"},
    description="Economic backtest, one convention for all (the forecast after the close of t sets the position "
                "from the close of t+1 to t+2; 10 bp per unit of turnover, run config; the flat part earns the "
                "stored cash rate, point in time, and Sharpe is in excess of it): each model flat when it "
                "forecasts its fold's risk-off regime, long otherwise, against buy_and_hold, sma_200, vol_target "
                "and jump_signal (the statistical jump model's own online state, fit inside each fold's training "
                "span) on the same dates, each measure with its 90 % block-bootstrap interval — into "
                "market.backtest; each model against each baseline and rule, paired on the same resampled days, "
                "into market.baseline_comparison; Hansen's SPA for the best of N; equity and drawdown curves.",
)
def backtest(context: dg.AssetExecutionContext, config: BacktestConfig, warehouse: Warehouse,
             settings: RegimeSettings) -> dg.Output[Report]:
    scope = ticker_scope(context, settings)
    oos = evaluated_predictions(warehouse, scope)
    with warehouse.connect() as con:
        prices = wh.adj_close_history(con, scope.ticker)
        labels = wh.regime_history(con, scope.ticker)
        labeler = wh.stored_labeler(con, scope.ticker)
        fold_risk_off = wh.fold_risk_off_regimes(con, scope.ticker, scope.targets_version)
        spans = wh.fold_training_spans(con, scope.ticker, scope.targets_version)
        cash_rows = wh.read_macro(con, list(cash.CASH_SERIES))
    prices = prices.sort("date")
    horizons = sorted(oos["horizon"].unique().to_list())
    if config.risk_off_regime is not None:
        regimes = int(oos["probabilities"].list.len().max())  # index = regime id: the regimes the models forecast
        if not 0 <= config.risk_off_regime < regimes:  # else every model would be buy-and-hold without a word
            raise ValueError(f"the backtest's run config risk_off_regime={config.risk_off_regime} is not a regime of "
                             f"{scope.describe()}, whose forecasts have regimes 0 … {regimes - 1}; set one of those "
                             "or leave it empty for each fold's own.")
        risk_off = {h: config.risk_off_regime for h in horizons}
    else:
        missing = [h for h in horizons if h not in fold_risk_off]
        if missing:
            raise ValueError(f"market.walk_forward_folds has no risk-off regime of {scope.describe()} at horizon "
                             f"{missing[0]}: re-materialize walk_forward_targets for {scope.ticker} (it records one "
                             "per fold), or set risk_off_regime in the backtest asset's run config.")
        risk_off = fold_risk_off
    seed = settings.settings().seed
    backtests = bt.backtest_all(oos, prices, risk_off, config.cost_bp, spans, seed,
                                cash.cash_returns(cash_rows, prices["date"].to_list()))
    table = bt.backtest_table(backtests)
    versus = paired.comparison_table(backtests, oos, seed)
    selection = {h: intervals.superior_predictive_ability(
        bt.BUY_AND_HOLD, {n: r.excess_returns for n, r in b.runs.items()}, [n for n in b.runs if paired.is_model(n)],
        seed=seed) for h, b in backtests.items()}
    with warehouse.connect() as con:
        wh.replace_backtest(con, scope.ticker, scope.targets_version, table, versus)

    h = headline_horizon(oos["horizon"], scope.horizon)
    directory = artifact_directory(settings, "backtest", scope.ticker)
    shown = table.filter(pl.col("horizon") == h).drop("horizon")
    headline = backtests[h]
    spa = selection[h]
    report = Report(documents={"backtest": {
        "headline_horizon": h, "cost_bp": config.cost_bp, "risk_off_regime_override": config.risk_off_regime,
        "labeler": labeler, "risk_off_by_fold": {str(k): v for k, v in risk_off.items()},
        "intervals": intervals.method_sentence(), "cash_rate": headline.cash_sentence,
        "selection": {str(k): None if v is None else {"benchmark": v.benchmark, "candidates": v.candidates,
                                                      "best": v.best, "pvalue": v.pvalue, "sentence": v.sentence()}
                      for k, v in selection.items()},
        "jump_signal_fits": {str(k): [f.describe() for f in b.jump_fits] for k, b in backtests.items()},
        "fitted_signals": {str(k): {bt.anchors.JUMP_SIGNAL: {"dates": [str(d) for d in b.signal_dates],
                                                             "signals": b.signals[bt.anchors.JUMP_SIGNAL].tolist()}}
                           for k, b in backtests.items() if bt.anchors.JUMP_SIGNAL in b.signals},
        "notes": [n for b in backtests.values() for n in b.notes],
        "rows": table.to_dicts(), "baseline_comparison": versus.to_dicts()}})
    span = labels.filter(pl.col("date").is_between(shown["start_date"].min(), shown["end_date"].max()))
    ordered = {name: headline.runs[name] for name in shown["strategy"].to_list()}
    meta = report_figure(report, directory, "equity_curves", plots.equity_curves(
        ordered, span["date"].to_list(), span["regime"].to_numpy(), names_by_id(labels),
        f"{scope.ticker}: equity and drawdown, h = {h}, {config.cost_bp:g} bp per unit of turnover (true regime "
        "shaded)"))
    risk_text = (f"regime {config.risk_off_regime} in every fold (run config)" if config.risk_off_regime is not None
                 else "per fold: " + ", ".join(f"fold {f} → {r}" for f, r in sorted(risk_off[h].items())))
    penalties = ", ".join(f"fold {f.fold}: {f.penalty:g}" for f in headline.jump_fits) or "—"
    meta = scope_metadata(scope) | meta
    meta |= {
        "horizon": h, "cost_bp": float(config.cost_bp),
        "span": f"{shown['start_date'].min()} … {shown['end_date'].max()}",
        "risk_off_regime": risk_text,
        "cash_rate": headline.cash_sentence,
        "table": dg.MetadataValue.md(
            "Sorted by Sharpe; baselines and rules marked; every strategy over the span above; "
            + headline.cash_sentence + " " + intervals.method_sentence() + "\n\n" + markdown_table(
                mark_baselines(shown.drop("start_date", "end_date"), "strategy"), 3)),
        "versus_baselines": dg.MetadataValue.md(
            "Each model minus each baseline and rule, paired (difference [90 % interval]); above zero is better on "
            "every measure.\n\n" + markdown_table(comparison.head_to_head(
                versus.filter(pl.col("horizon") == h), ("sharpe", "max_drawdown")))),
        "best_of_n": spa.sentence() if spa else "no model strategy to test",
        "jump_signal_penalty": penalties,
        "notes": " ".join(headline.notes) or "none",
        "backtest_json": dg.MetadataValue.path(str(report.document_path(directory, "backtest"))),
        **floats("sharpe", shown, "strategy", "sharpe"),
        **floats("max_drawdown", shown, "strategy", "max_drawdown"),
    }
    for note in headline.notes:
        context.log.warning(note)
    return dg.Output(report, metadata=tables_first(report, meta))


# --- model_comparison ------------------------------------------------------------------------------------

@ticker_asset(
    group_name=GROUP,
    deps=[model_metrics, backtest, regime_change_timing],
    io_manager_key="artifacts",
    kinds={"duckdb"},
    description="Every model beside both baselines, buy_and_hold and the 200-day rule: macro-F1, balanced "
                "accuracy, Sharpe, max drawdown and median change lead in one table and one chart; "
                "beats_baselines says in sentences which baseline no model beats.",
)
def model_comparison(context: dg.AssetExecutionContext, warehouse: Warehouse,
                     settings: RegimeSettings) -> dg.Output[Report]:
    scope = ticker_scope(context, settings)
    stored, trades, versus = stored_evaluation(warehouse, scope)
    h = headline_horizon(stored["horizon"], scope.horizon)
    table = comparison.comparison_table(stored, trades, h)
    passed, sentences = comparison.verdict(table, versus.filter(pl.col("horizon") == h),
                                           selection_sentences(settings, scope.ticker, h))
    directory = artifact_directory(settings, "model_comparison", scope.ticker)
    report = Report(documents={"model_comparison": {**scope_metadata(scope), "horizon": h, "rows": table.to_dicts(),
                                                    "beats_baselines": passed, "findings": sentences}})
    meta = report_figure(report, directory, "comparison", plots.model_comparison(
        mark_baselines(table, "name"), f"{scope.ticker}: models vs baselines and rules, h = {h}"))
    meta = scope_metadata(scope) | meta
    meta |= {"horizon": h,
             "table": dg.MetadataValue.md("Models by Sharpe, then the baselines, then the rules (they trade without "
                                          "forecasting a regime: no macro-F1); _lo/_hi: the 90 % interval.\n\n"
                                          + markdown_table(mark_baselines(table, "name"), 3)),
             "head_to_head": dg.MetadataValue.md(
                 "Model minus baseline, paired, with the 90 % interval (above zero = better).\n\n"
                 + markdown_table(comparison.head_to_head(versus.filter(pl.col("horizon") == h)))),
             "verdict": dg.MetadataValue.md(" ".join((["The best model beats every baseline at 90 %."] if passed
                                                      else []) + sentences))}
    return dg.Output(report, metadata=tables_first(report, meta))


def stored_evaluation(warehouse: Warehouse, scope: TickerScope) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The ticker's pooled metrics, backtest and paired baseline comparison of the current targets version (one
    sentence when absent)."""
    with warehouse.connect() as con:
        stored = wh.stored_model_metrics(con, scope.ticker, scope.targets_version, pooled_only=True)
        trades = wh.stored_backtest(con, scope.ticker, scope.targets_version)
        versus = wh.stored_baseline_comparison(con, scope.ticker, scope.targets_version)
    if stored.is_empty() or trades.is_empty():
        raise ValueError(f"market.model_metrics or market.backtest has no rows of {scope.describe()}: materialize "
                         f"model_metrics and backtest for {scope.ticker} first.")
    return stored, trades, versus


def selection_sentences(settings: RegimeSettings, ticker: str, horizon: int) -> list[str]:
    """The backtest's data-snooping test (Hansen's SPA) for the horizon, as written to backtest.json."""
    path = artifact_directory(settings, "backtest", ticker)
    if not Report.saved(path):
        return []
    chosen = Report.load(path, asset=f"backtest for {ticker}").documents["backtest"].get("selection", {}).get(
        str(horizon))
    return [chosen["sentence"]] if chosen else []
