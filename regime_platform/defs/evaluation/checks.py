"""evaluation checks on model_comparison: `beats_baselines` (the verdict on the paired intervals) and
`metrics_reproducible` (an independent recomputation). `not_collapsed` sits beside model_metrics in assets.py.
Thin: read stored rows, call the domain (comparison, audit), attach metadata."""

import dagster as dg
import polars as pl

from regime_platform import storage as wh
from regime_platform.defs.evaluation.assets import (
    backtest,
    model_comparison,
    model_metrics,
    scope_metadata,
    selection_sentences,
    stored_evaluation,
)
from regime_platform.defs.metadata import markdown_table
from regime_platform.defs.partitions import ticker_check
from regime_platform.defs.resources import RegimeSettings, Warehouse, artifact_directory
from regime_platform.defs.scope import ticker_scope
from regime_platform.evaluation import audit, cash, comparison
from regime_platform.evaluation import backtest as bt
from regime_platform.evaluation.horizon import headline_horizon
from regime_platform.storage.reports import Report


@ticker_check(asset=model_comparison, name="beats_baselines",
              description="Passes only when the best model's paired 90 % interval lies above zero against every "
                          "baseline and rule on Sharpe (buy_and_hold, sma_200, vol_target, jump_signal, persistence, "
                          "majority) and against persistence and majority on macro-F1 and balanced accuracy; "
                          "otherwise WARN, per reference: ahead but not distinguishable, or behind.")
def beats_baselines(context: dg.AssetCheckExecutionContext, warehouse: Warehouse,
                    settings: RegimeSettings) -> dg.AssetCheckResult:
    scope = ticker_scope(context, settings)
    stored, trades, versus = stored_evaluation(warehouse, scope)
    h = headline_horizon(stored["horizon"], scope.horizon)
    table = comparison.comparison_table(stored, trades, h)
    passed, sentences = comparison.verdict(table, versus.filter(pl.col("horizon") == h),
                                           selection_sentences(settings, scope.ticker, h))
    return dg.AssetCheckResult(
        passed=passed, severity=dg.AssetCheckSeverity.WARN,
        description=" ".join(sentences),
        metadata={**scope_metadata(scope), "horizon": h,
                  "head_to_head": dg.MetadataValue.md(markdown_table(comparison.head_to_head(
                      versus.filter(pl.col("horizon") == h)))),
                  "findings": dg.MetadataValue.md("\n".join(f"- {x}" for x in sentences) or "none")})


@ticker_check(asset=model_comparison, name="metrics_reproducible",
              additional_deps=[model_metrics, backtest],
                description="Recomputes the pooled metrics and the backtest from market.oos_predictions and "
                            "market.ohlcv (and the cash rate from market.macro) through SQL aggregates and vectorized "
                            "numpy (not the asset's code) and "
                            "compares them with market.model_metrics and market.backtest.")
def metrics_reproducible(context: dg.AssetCheckExecutionContext, warehouse: Warehouse,
                         settings: RegimeSettings) -> dg.AssetCheckResult:
    scope = ticker_scope(context, settings)
    t, v = scope.ticker, scope.targets_version
    directory = artifact_directory(settings, "backtest", t)
    if not Report.saved(directory):
        return dg.AssetCheckResult(passed=False, description=f"{directory} holds no backtest report: materialize "
                                                             f"backtest for {t}.")
    used = Report.load(directory, asset=f"backtest for {t}").documents["backtest"]
    with warehouse.connect() as con:
        recomputed_metrics = audit.pooled_metrics(wh.audit_confusion_counts(con, t, v),
                                                  wh.audit_transition_scores(con, t, v),
                                                  wh.audit_scored_probabilities(con, t, v))
        recomputed_backtest = audit.backtest_measures(
            wh.audit_long_signals(con, t, v, used["risk_off_regime_override"]),
            wh.audit_price_path(con, t, bt.SMA_WINDOW, bt.anchors.VOL_WINDOW, cash.CASH_SERIES, cash.STALE_SESSIONS),
            float(used["cost_bp"]),
            {int(h): record for h, record in used.get("fitted_signals", {}).items()})
        problems = audit.compare(wh.stored_model_metrics(con, t, v, pooled_only=True), recomputed_metrics,
                                 wh.stored_backtest(con, t, v), recomputed_backtest)
    return dg.AssetCheckResult(
        passed=not problems,
        description=f"{len(problems)} stored value(s) differ from the recomputation." if problems else
        "Every pooled metric and backtest measure matches the recomputation.",
        metadata={"values_compared": recomputed_metrics.height + recomputed_backtest.height,
                  "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems[:50]) or "none")})
