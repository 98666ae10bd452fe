"""explainability: what drives each model's forecasts, where the methods agree, what each regime looks like."""
import time

import dagster as dg
import numpy as np
import polars as pl

from regime_platform import explainability as explain
from regime_platform import storage as wh
from regime_platform.defs.features.assets import features
from regime_platform.defs.labels.assets import regime_labels
from regime_platform.defs.metadata import markdown_table, report_figure
from regime_platform.defs.modeling.assets import walk_forward_targets
from regime_platform.defs.partitions import ticker_asset
from regime_platform.defs.resources import RegimeSettings, Warehouse, artifact_directory
from regime_platform.defs.scope import TickerScope, ticker_scope
from regime_platform.explainability import figures as plots
from regime_platform.explainability import regime_profiles as profiles
from regime_platform.explainability.attributions import RECENT_SESSIONS
from regime_platform.features import macro as macro_inputs
from regime_platform.features.compute import MODEL_FEATURES
from regime_platform.labels import names_by_id, regime_label
from regime_platform.modeling import production
from regime_platform.modeling.targets import PRODUCTION_FOLD, stored_fold_targets
from regime_platform.storage.reports import Report

MAX_WINDOWS_PER_REGIME = 200  # captum: windows sampled per forecast regime at most
PERMUTATION_REPEATS = 10
MAX_REFITS = 10  # regime profiles: labeler refits profiled at most (evenly spread over the folds)
EXPLANATION = "explanation"  # each asset's numbers: explanation.json beside its figures


class SequenceAttributionConfig(dg.Config):
    recent_sessions: int = RECENT_SESSIONS  # explain the windows ending in this many most recent sessions
    max_windows_per_regime: int = MAX_WINDOWS_PER_REGIME  # sampled (seeded) beyond this, and recorded
    time_block: int = 1  # sessions occluded together across all features (1 = each lag on its own)


class PermutationConfig(dg.Config):
    recent_sessions: int = RECENT_SESSIONS
    repeats: int = PERMUTATION_REPEATS  # shuffles per feature (and per lag); the spread is over these
    max_windows: int = 500  # sampled (seeded) beyond this, and recorded


class RegimeProfileConfig(dg.Config):
    max_refits: int = MAX_REFITS  # labeler refits profiled at most, evenly spread over the walk-forward folds


def _sessions(warehouse: Warehouse, scope: TickerScope) -> pl.DataFrame:
    with warehouse.connect() as con:
        sessions = wh.explanation_sessions(con, scope.ticker)
        if scope.settings.macro != "off":  # the macro features a model may have been fit on, point in time
            sessions = macro_inputs.with_macro(sessions, wh.read_macro(con, macro_inputs.MACRO_SERIES),
                                               macro_inputs.MACRO_FEATURES)
    if sessions.filter(pl.col("regime").is_not_null()).is_empty():
        raise ValueError(f"market.regime_labels or market.features has no rows of {scope.ticker}: materialize "
                         f"regime_labels for {scope.ticker} first.")
    return sessions


def _current(scope: TickerScope, *models: production.ProductionModel) -> None:
    """Refuses, in one sentence, a production model fit on another ticker's or targets version's labels."""
    for fitted in models:
        refusal = fitted.version_refusal(scope.ticker, scope.targets_version)
        if refusal:
            raise ValueError(refusal)


def _raw_features(sessions: pl.DataFrame, names: list[str]) -> np.ndarray:
    return sessions.select(names).fill_null(np.nan).to_numpy().astype(np.float64)


def _figure(report: Report, settings: RegimeSettings, scope: TickerScope, asset_name: str, name: str, fig,
            alt: str | None = None) -> dict:
    """``fig`` into the report and its metadata: the file is the inline image itself, its path under ``<name>_file``."""
    return report_figure(report, artifact_directory(settings, asset_name, scope.ticker), name, fig, alt=alt,
                         path_suffix="_file", full_size_file=False)


@ticker_asset(
    group_name="explainability",
    io_manager_key="artifacts",
    kinds={"pytorch", "duckdb"},
    description="captum attributions of the production LSTM and CNN on the windows ending in the most recent "
                f"{RECENT_SESSIONS} sessions, per forecast regime: occlusion of one feature over the whole window "
                "and of one session across all features (replaced by 0 after scaling = the training-span mean), "
                "saliency |∂p/∂x| and |gradient × input|. Heat maps (features × lags), a ranked feature chart, "
                "JSON, and market.feature_attributions.",
)
def sequence_attributions(
    context: dg.AssetExecutionContext,
    config: SequenceAttributionConfig,
    warehouse: Warehouse,
    settings: RegimeSettings,
    lstm_model: production.ProductionModel,
    cnn_model: production.ProductionModel,
) -> Report:
    started = time.perf_counter()
    scope = ticker_scope(context, settings)
    _current(scope, lstm_model, cnn_model)
    sessions = _sessions(warehouse, scope)
    dates, names = sessions["date"].to_list(), names_by_id(sessions)
    results, spans = [], {}
    for fitted in (lstm_model, cnn_model):
        recent = explain.production_windows(fitted, _raw_features(sessions, fitted.feature_names), dates,
                                            config.recent_sessions)
        attr = explain.sequence_attributions(fitted.model.net_, recent.windows, fitted.feature_names,
                                             model=fitted.name, n_classes=fitted.n_classes,
                                             max_per_regime=config.max_windows_per_regime,
                                             time_block=config.time_block)
        spans[fitted.name] = recent
        results.append(attr)
        context.log.info(f"{fitted.name}: {attr.sampled[None]} windows attributed in {attr.seconds:.1f} s")
    rows = pl.concat([a.rows() for a in results])
    with warehouse.connect() as con:
        wh.replace_feature_attributions(con, scope.ticker, scope.targets_version, rows)

    report = Report()
    images = {}
    for a in results:
        images |= _figure(report, settings, scope, "sequence_attributions", f"heatmap_{a.model}",
                          plots.attribution_heatmaps(a, names))
    images |= _figure(report, settings, scope, "sequence_attributions", "feature_ranking",
                      plots.feature_ranking_chart(results), "features ranked")
    agreement = explain.method_agreement(rows)
    top = pl.DataFrame([
        {"model": a.model, "forecast": plots.forecast_label(r, names), "windows": f"{a.sampled[r]} of {a.available[r]}",
         **{explain.METHOD_LABELS[m]: ", ".join(a.top_features(m, 3, r))
            for m in ("occlusion_feature", "saliency", "input_x_gradient")},
         "top lags (occlusion)": ", ".join(map(str, a.top_lags("occlusion_time", 3, r)))}
        for a in results for r in a.regimes()])
    windows = pl.DataFrame([
        {"model": a.model, "first window end": str(spans[a.model].first), "last window end": str(spans[a.model].last),
         "windows": int(spans[a.model].t.size), "after the production training span": spans[a.model].after_training,
         "seconds": round(a.seconds, 2)} for a in results])
    payload = {"baseline": explain.BASELINE_NOTE, "recent_sessions": config.recent_sessions,
               "models": {a.model: a.summary() for a in results}}
    context.add_output_metadata({
        "ticker": scope.ticker,
        "targets_version": scope.targets_version,
        "top_features": dg.MetadataValue.md(markdown_table(top)),
        "agreement": dg.MetadataValue.md(agreement.to_markdown()),
        "windows": dg.MetadataValue.md(markdown_table(windows) + "\n\nWindows inside the production model's "
                                       "training span were seen in training; the walk-forward fold models are not "
                                       "stored, so the production model is what is explained."),
        "baseline": explain.BASELINE_NOTE,
        "windows_attributed": int(sum(a.sampled[None] for a in results)),
        "rows_written": rows.height,
        "seconds": round(time.perf_counter() - started, 2),
        **images,
    })
    report.documents[EXPLANATION] = payload
    return report


@ticker_asset(
    group_name="explainability",
    io_manager_key="artifacts",
    kinds={"scikitlearn", "duckdb"},
    description="scikit-learn permutation importance of the production random forest and logistic model, scored "
                f"by macro-F1 over {PERMUTATION_REPEATS} shuffles, on the windows ending in the most recent "
                f"{RECENT_SESSIONS} sessions that have a target: a whole feature (every lag) and a whole session "
                "(every feature) at a time. Bar chart with the spread across repeats, JSON, market.feature_attributions.",
)
def permutation_importance(
    context: dg.AssetExecutionContext,
    config: PermutationConfig,
    warehouse: Warehouse,
    settings: RegimeSettings,
    random_forest_model: production.ProductionModel,
    logistic_model: production.ProductionModel,
) -> Report:
    started = time.perf_counter()
    scope = ticker_scope(context, settings)
    _current(scope, random_forest_model, logistic_model)
    sessions = _sessions(warehouse, scope)
    dates = sessions["date"].to_list()
    regime = sessions["regime"].fill_null(-1).to_numpy()
    results = []
    for fitted in (random_forest_model, logistic_model):
        h = fitted.horizon
        last_t = int(np.flatnonzero(regime >= 0)[-1]) - h  # the last window whose target is labelled
        recent = explain.production_windows(fitted, _raw_features(sessions, fitted.feature_names), dates,
                                            config.recent_sessions, last_t=last_t)
        y = regime[recent.t + h]
        keep = y >= 0
        result = explain.permutation_importances(
            fitted.model, recent.windows[keep], y[keep], fitted.feature_names, name=fitted.name,
            n_classes=fitted.n_classes, n_repeats=config.repeats, max_windows=config.max_windows)
        results.append(result)
        context.log.info(f"{fitted.name}: {result.windows} windows × {config.repeats} repeats "
                         f"in {result.seconds:.1f} s")
    rows = pl.concat([r.rows() for r in results])
    with warehouse.connect() as con:
        wh.replace_feature_attributions(con, scope.ticker, scope.targets_version, rows)
    report = Report()
    images = _figure(report, settings, scope, "permutation_importance", "permutation_importance",
                     plots.permutation_chart(results), "permutation importance")
    ranking = pl.concat([r.ranking().head(8).with_columns(pl.lit(r.model).alias("model")).select(
        "model", "feature", "mean_drop", "std", "min", "max") for r in results])
    summary = pl.DataFrame([{k: v for k, v in r.summary().items() if k not in ("top_features", "top_lags")}
                            | {"top lags": ", ".join(map(str, r.summary()["top_lags"][:3]))} for r in results])
    context.add_output_metadata({
        "ticker": scope.ticker,
        "targets_version": scope.targets_version,
        "top_features": dg.MetadataValue.md(markdown_table(ranking)),
        "scored": dg.MetadataValue.md(markdown_table(summary)),
        "agreement": dg.MetadataValue.md(explain.method_agreement(rows).to_markdown()),
        "windows_scored": int(sum(r.windows for r in results)),
        "rows_written": rows.height,
        "seconds": round(time.perf_counter() - started, 2),
        **images,
    })
    report.documents[EXPLANATION] = {"models": {r.model: r.summary() for r in results},
                                     "importances": {r.model: r.ranking().to_dicts() for r in results}}
    return report


@ticker_asset(
    group_name="explainability",
    deps=[sequence_attributions, permutation_importance],
    io_manager_key="artifacts",
    kinds={"duckdb"},
    description="Read this first: where occlusion, saliency, gradient × input and permutation importance agree on "
                "the top features across the four models, and where they do not (ranks, Spearman correlations).",
)
def attribution_agreement(context: dg.AssetExecutionContext, warehouse: Warehouse,
                          settings: RegimeSettings) -> Report:
    started = time.perf_counter()
    scope = ticker_scope(context, settings)
    with warehouse.connect() as con:
        rows = wh.read_feature_attributions(con, scope.ticker, scope.targets_version)
    if rows.is_empty():
        raise ValueError(f"market.feature_attributions has no rows of {scope.describe()}: materialize "
                         f"sequence_attributions and permutation_importance for {scope.ticker} first.")
    agreement = explain.method_agreement(rows)
    report = Report()
    images = _figure(report, settings, scope, "attribution_agreement", "agreement",
                     plots.agreement_chart(agreement.ranks, agreement.top_k), "feature ranks")
    context.add_output_metadata({
        "ticker": scope.ticker,
        "targets_version": scope.targets_version,
        "agreement": dg.MetadataValue.md(agreement.to_markdown()),
        "pairs": dg.MetadataValue.md(markdown_table(agreement.pairs.sort("spearman", descending=True))),
        "consensus_features": ", ".join(agreement.consensus) or "none",
        "mean_spearman": float(agreement.pairs["spearman"].mean()) if agreement.pairs.height else float("nan"),
        "rankings_compared": len(agreement.ranks.columns) - 1,
        "seconds": round(time.perf_counter() - started, 2),
        **images,
    })
    report.documents[EXPLANATION] = {"ranks": agreement.ranks.to_dicts(), "pairs": agreement.pairs.to_dicts(),
                                     "consensus": agreement.consensus, "disputed": agreement.disputed}
    return report


@ticker_asset(
    group_name="explainability",
    deps=[regime_labels, dg.AssetDep(features, partition_mapping=dg.AllPartitionMapping()), walk_forward_targets],
    io_manager_key="artifacts",
    kinds={"duckdb"},
    description="What each regime looks like in the stored labels: feature means and spreads, mean and volatility "
                "of daily returns, episodes and durations, share of sessions, the transition matrix, the timeline "
                "over the price; for a generated labeler, the same per walk-forward refit and each refit's "
                "agreement with the stored labels (how stable the definitions are). market.regime_profiles.",
)
def regime_profiles(context: dg.AssetExecutionContext, config: RegimeProfileConfig, warehouse: Warehouse,
                    settings: RegimeSettings) -> Report:
    started = time.perf_counter()
    scope = ticker_scope(context, settings)
    sessions = _sessions(warehouse, scope)
    names = names_by_id(sessions)
    labelled = sessions.filter(pl.col("regime").is_not_null())
    regimes = labelled["regime"].to_numpy().astype(np.int64)
    k = int(regimes.max()) + 1
    labeler = str(labelled["labeler"][0])
    stats = profiles.regime_statistics(regimes, labelled["adj_close"].to_numpy(), n_regimes=k, names=names)
    feature_stats = profiles.feature_statistics(labelled, regimes, MODEL_FEATURES, k)
    matrix = profiles.transition_matrix(regimes, k)
    rows = [profiles.long_statistics(stats, "stored", None, labelled["date"][0], labelled["date"][-1],
                                     transitions=matrix, features=feature_stats)]
    report = Report()
    images = _figure(report, settings, scope, "regime_profiles", "transition_matrix",
                     plots.transition_heatmap(matrix, names), "transition matrix")
    images |= _figure(report, settings, scope, "regime_profiles", "regime_timeline", plots.regime_timeline(
        labelled["date"].to_list(), labelled["adj_close"].to_numpy(), regimes, names,
        f"{scope.ticker}: regimes ({labeler}) over the adjusted close"), "timeline")
    refit_note, folds = "user labels: taken as given in every fold, nothing is refit", None
    if labeler != "user":
        refit_started = time.perf_counter()
        # the refits the walk-forward made (walk_forward_targets), read back rather than refit again
        with warehouse.connect() as con:
            fold_table = wh.read_walk_forward_folds(con, scope.ticker, scope.targets_version)
            fold_rows = wh.read_fold_labels(con, scope.ticker, scope.targets_version)
        if fold_table.is_empty():
            raise ValueError(f"market.walk_forward_folds has no targets of {scope.describe()}: materialize "
                             f"walk_forward_targets for {scope.ticker} first.")
        targets = stored_fold_targets(sessions["date"].to_list(), fold_table, fold_rows)
        schedule = [profiles.RefitFold(r["fold"], r["test_year"], r["train_target_end"])
                    for r in fold_table.filter(pl.col("fold") != PRODUCTION_FOLD).iter_rows(named=True)]
        picked, thinned = profiles.spread_evenly(schedule, config.max_refits)

        def fold_labels(end):
            refit = targets.fold_labels(end, end)
            keep = refit.train_regime >= 0
            return [d for d, ok in zip(refit.dates, keep) if ok], refit.train_regime[keep]

        folds = profiles.refit_profiles(picked, fold_labels, labelled.select("date", "regime", "adj_close"), k)
        for (fold, start, end), part in folds.group_by("fold", "fit_start", "fit_end", maintain_order=True):
            rows.append(profiles.long_statistics(part, "refit", fold, start, end))
        images |= _figure(report, settings, scope, "regime_profiles", "refit_stability",
                          plots.refit_stability_chart(folds, stats), "refit stability")
        refit_note = (f"`{labeler}` as refit on {len(picked)} of {len(schedule)} walk-forward training spans "
                      "(the stored fold targets of walk_forward_targets)"
                      + (" (evenly spread, first and last kept)" if thinned else "")
                      + f", read in {time.perf_counter() - refit_started:.1f} s")
    table = pl.concat(rows, how="vertical_relaxed")
    with warehouse.connect() as con:
        wh.replace_regime_profiles(con, scope.ticker, table)

    shown = stats.select("regime", "name", "sessions", "share", "annual_return", "annual_vol", "episodes",
                         "duration_mean", "duration_median", "duration_longest")
    means = feature_stats.with_columns(
        cell=pl.format("{} ± {}", pl.col("mean").round(3), pl.col("std").round(3))).pivot(
        on="regime", index="feature", values="cell")
    metadata = {
        "ticker": scope.ticker,
        "labeler": labeler,
        "regimes": dg.MetadataValue.md(markdown_table(shown)),
        "feature_means": dg.MetadataValue.md("Mean ± standard deviation per regime:\n\n" + markdown_table(
            means.rename({c: regime_label(int(c), names) for c in means.columns if c != "feature"}))),
        "refits": refit_note,
        "sessions": int(regimes.size),
        "rows_written": table.height,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if folds is not None:
        per_fold = folds.group_by("fold", "fit_end", maintain_order=True).agg(
            pl.col("agreement").first(), *[pl.col("annual_vol").filter(pl.col("regime") == r).first().alias(f"vol {r}")
                                           for r in range(k)],
            *[pl.col("share").filter(pl.col("regime") == r).first().alias(f"share {r}") for r in range(k)])
        metadata["refit_profiles"] = dg.MetadataValue.md(markdown_table(per_fold.with_columns(pl.col("fit_end").cast(pl.String))))
        metadata["min_refit_agreement"] = float(folds["agreement"].min())
    metadata.update(images)
    context.add_output_metadata(metadata)
    payload = {"labeler": labeler, "statistics": stats.to_dicts(), "transition_matrix": matrix.tolist(),
               "feature_statistics": feature_stats.to_dicts(), "refits": refit_note,
               "refit_profiles": folds.to_dicts() if folds is not None else None}
    report.documents[EXPLANATION] = payload
    return report
