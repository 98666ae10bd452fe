"""modeling: the walk-forward folds and their targets (once), then one asset per model — out-of-sample predictions,
a production fit, and a leakage check beside each."""
import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from regime_platform import storage as wh
from regime_platform.defs.features.assets import features
from regime_platform.defs.labels.assets import regime_labels
from regime_platform.defs.metadata import bullets, markdown_table
from regime_platform.defs.partitions import ticker_asset, ticker_check
from regime_platform.defs.resources import RegimeSettings, Warehouse, artifact_directory
from regime_platform.defs.scope import TickerScope, ticker_scope
from regime_platform.features import causality
from regime_platform.features import macro as macro_inputs
from regime_platform.features.compute import MODEL_FEATURES, model_feature_set
from regime_platform.modeling import fold_records, known_regime, leakage, production, walk_forward
from regime_platform.modeling.targets import PRODUCTION_FOLD, stored_fold_targets, walk_forward_labels
from regime_platform.modeling.training import TrainingConfig
from regime_platform.modeling.walk_forward_targets import compute_walk_forward_targets
from regime_platform.models import MODELS
from regime_platform.models.base import LeveledLog
from regime_platform.storage.files import to_jsonable

# One asset per registered model (regime_platform.models.MODELS, in its order): registry name → kind shown in the UI.
MODEL_ASSETS = {name: cls.kind for name, cls in MODELS.items()}


@dataclass
class ModelInputs:
    """The sessions, model features and daily returns the walk-forward reads, and the stored labels."""

    frame: pl.DataFrame
    stored_labels: pl.DataFrame
    feature_names: list[str]  # REGIME_FEATURES, then the macro features REGIME_MACRO=auto adds
    macro_notes: list[str] | None = None  # why a macro feature was left out (REGIME_MACRO=auto)

    @property
    def dates(self) -> list[dt.date]:
        return self.frame["date"].to_list()

    @property
    def X(self) -> np.ndarray:
        return self.frame.select(self.feature_names).fill_null(np.nan).to_numpy().astype(np.float64)

    @property
    def returns(self) -> np.ndarray:
        return self.frame["ret_1d"].fill_null(np.nan).to_numpy().astype(np.float64)

    @property
    def labeler(self) -> str:
        return self.stored_labels["labeler"][0]


def read_model_inputs(warehouse: Warehouse, scope: TickerScope) -> ModelInputs:
    """The ticker's sessions, features and stored labels; refuses labels made by another labeler than the settings
    ask for (the targets would not be the version every table is keyed by)."""
    names = model_feature_set(scope.settings.features)
    with warehouse.connect() as con:
        frame, labels = wh.read_labeler_frame(con, scope.ticker), wh.read_regime_labels(con, scope.ticker)
        macro_rows = wh.read_macro(con, macro_inputs.MACRO_SERIES) if scope.settings.macro != "off" else None
    notes = None
    if macro_rows is not None:  # point in time: each session reads the market.macro rows usable at its close
        frame, added, notes = macro_inputs.model_inputs(frame, macro_rows, names)
        names = names + added
    inputs = ModelInputs(frame, labels, names, notes)
    if inputs.stored_labels.is_empty():
        raise ValueError(f"market.regime_labels has no rows of {scope.ticker}: materialize regime_labels for "
                         f"{scope.ticker} first.")
    if inputs.labeler != scope.labeler:
        raise ValueError(f"market.regime_labels of {scope.ticker} were made by `{inputs.labeler}`, but the settings "
                         f"now ask for `{scope.labeler}`: re-materialize regime_labels for {scope.ticker} first.")
    return inputs


def read_stored_targets(warehouse: Warehouse, scope: TickerScope, inputs: ModelInputs):
    """The stored fold targets of the scope's version; one sentence saying what to materialize when there are none."""
    with warehouse.connect() as con:
        folds = wh.read_walk_forward_folds(con, scope.ticker, scope.targets_version)
        rows = wh.read_fold_labels(con, scope.ticker, scope.targets_version)
    if folds.is_empty():
        raise ValueError(f"market.walk_forward_folds has no targets of version {scope.targets_version} for "
                         f"{scope.ticker} (the current settings): materialize walk_forward_targets for "
                         f"{scope.ticker} first.")
    return stored_fold_targets(inputs.dates, folds, rows)


@ticker_asset(
    group_name="modeling",
    deps=[regime_labels, dg.AssetDep(features, partition_mapping=dg.AllPartitionMapping())],
    kinds={"duckdb"},
    description="The ticker's walk-forward folds (expanding window, yearly refits, embargo) of the configured "
                "horizon and every fold's targets, computed once for all models: a generated labeler is refit inside "
                "each fold on its training span (a user's file is taken as given). Into market.walk_forward_folds "
                "(with each fold's risk-off regime) and market.fold_labels under the targets version of the current "
                "settings; fold -1 holds the production fit's labels.",
)
def walk_forward_targets(context: dg.AssetExecutionContext, warehouse: Warehouse,
                         settings: RegimeSettings) -> dg.MaterializeResult:
    scope = ticker_scope(context, settings)
    s = scope.settings
    inputs = read_model_inputs(warehouse, scope)
    started = time.perf_counter()
    settle = s.settle_sessions_for(inputs.labeler)  # the truth's rule, DESIGN §3a
    result = compute_walk_forward_targets(
        inputs.dates, inputs.X, inputs.feature_names, walk_forward_labels(inputs.frame, inputs.stored_labels, settle),
        TrainingConfig.from_settings(s), labeler=inputs.labeler, returns=inputs.returns, log=step_log(context))
    with warehouse.connect() as con:
        wh.replace_walk_forward_targets(con, scope.ticker, scope.targets_version, result.fold_table, result.label_rows)
    shown = result.fold_table.filter(pl.col("fold") != PRODUCTION_FOLD).select(
        "fold", "test_year", "train_end", "test_start", "test_end", "labeler_fit_start", "labeler_fit_end", "truth_fit_end",
        "state_mapping", "risk_off_regime")
    return dg.MaterializeResult(metadata={
        "ticker": scope.ticker,
        "targets_version": scope.targets_version,
        "labeler": inputs.labeler,
        "horizon": s.horizon,
        "settle_sessions": settle,
        "unsettled_test_targets": sum(result.unsettled.values()),
        "folds": len(result.folds),
        "single_split": bool(result.folds and result.folds[0].single_split),
        "features": ", ".join(inputs.feature_names),
        "macro_inputs": bullets(inputs.macro_notes or [], "REGIME_MACRO=off" if inputs.macro_notes is None else
                                "every macro feature covers the span"),
        "label_rows": result.label_rows.height,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "fold_table": dg.MetadataValue.md(markdown_table(shown)),
    })


def step_log(context) -> LeveledLog:
    """Fold summaries at INFO, per-epoch lines at DEBUG (the UI's log level filter shows them)."""
    return LeveledLog(context.log.info, context.log.debug)


def legacy_folds_path(settings: RegimeSettings, asset_name: str, scope: TickerScope) -> Path:
    """Where fold records were written before they moved into market.fold_records (with the rows, one transaction):
    one file per model, ticker and targets version, no longer read."""
    return artifact_directory(settings, asset_name, scope.ticker) / f"folds_{scope.targets_version}.json"


@dataclass
class LeakageEvidence:
    """What `no_leakage` verifies fold records against: stored features, prices, this model's rows, labels, and
    what the regime known at a date is recomputed from."""

    features: pl.DataFrame
    prices: pl.DataFrame
    oos: pl.DataFrame
    records: list[dict]  # this model's fold records, read with its rows (stored in one transaction)
    records_digest: str | None  # the walk-forward digest stored with them
    labeler: str | None
    known: known_regime.KnownRegimeInputs
    macro: pl.DataFrame  # the stored market.macro rows the macro features read


def read_leakage_evidence(warehouse: Warehouse, scope: TickerScope, model: str) -> LeakageEvidence:
    with warehouse.connect() as con:
        records, digest = fold_records.records_from_rows(wh.read_fold_records(con, scope.ticker, scope.targets_version,
                                                                              model))
        return LeakageEvidence(wh.read_features(con, scope.ticker), wh.read_prices(con, scope.ticker),
                               wh.read_oos_predictions(con, scope.ticker, scope.targets_version, model),
                               records, digest, wh.stored_labeler(con, scope.ticker),
                               known_regime.KnownRegimeInputs(wh.read_labeler_frame(con, scope.ticker),
                                                              wh.read_regime_labels(con, scope.ticker),
                                                              scope.settings.label_lag),
                               wh.read_macro(con, macro_inputs.MACRO_SERIES))


def build_model_asset(model: str, kind: str) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    asset_name = f"{model}_model"

    @ticker_asset(
        name=asset_name,
        group_name="modeling",
        deps=[walk_forward_targets],
        io_manager_key="artifacts",
        kinds={kind},
        description=f"`{model}` for the partition's ticker: walk-forward evaluation on the stored fold targets of the "
                    "current targets version (scaler fit inside each fold, every model fit on its whole training span) "
                    "and a production fit on all labelled history; the out-of-sample rows and the fold records "
                    "no_leakage verifies go into market.oos_predictions and market.fold_records in one transaction, "
                    "then the production model, carrying their digest, is saved under data/artifacts/<asset>/<ticker>/.",
    )
    def _model(context: dg.AssetExecutionContext, warehouse: Warehouse,
               settings: RegimeSettings) -> production.ProductionModel:
        scope = ticker_scope(context, settings)
        config = TrainingConfig.from_settings(scope.settings)
        inputs = read_model_inputs(warehouse, scope)
        targets = read_stored_targets(warehouse, scope, inputs)
        started = time.perf_counter()
        say = context.log.debug if MODELS[model].is_baseline else context.log.info  # a baseline's folds take no time
        result = walk_forward.walk_forward(
            inputs.dates, inputs.X, inputs.feature_names, targets, [model], config, returns=inputs.returns,
            include_baselines=False, log=step_log(context),
            progress=lambda done, total, what: say(f"[{done}/{total}] {what}"))
        for warning in result.warnings:
            context.log.warning(warning)
        final = production.fit_final(inputs.dates, inputs.X, inputs.feature_names, targets, [model], config,
                                     returns=inputs.returns, include_baselines=False, log=step_log(context))[0]
        oos, records = result.oos_predictions, result.fold_records_json()
        digest = fold_records.walk_forward_digest(records, oos)
        final.ticker, final.targets_version, final.walk_forward_digest = scope.ticker, scope.targets_version, digest
        # the rows and the records they are verified against: one transaction; the model (saved by the IO manager once
        # this returns) carries the digest that ties it to them
        with warehouse.connect() as con:
            wh.replace_model_walk_forward(con, scope.ticker, scope.targets_version, model, oos,
                                          fold_records.record_rows(records, digest))
        if wh.discard(legacy_folds_path(settings, asset_name, scope)):
            context.log.info("removed the fold-record file of the layout before market.fold_records (no longer read)")
        context.add_output_metadata({
            "ticker": scope.ticker,
            "targets_version": scope.targets_version,
            "model_version": final.model_version,
            "labeler": inputs.labeler,
            "folds": len(result.fold_records),
            "single_split": result.single_split,
            "oos_predictions": oos.height,
            "oos_accuracy": result.pooled_accuracy(),
            "production_fit_samples": final.model.fit_info["n_fit"],
            "features": ", ".join(final.feature_names),
            "calibration": dg.MetadataValue.json(to_jsonable(final.model.fit_info.get("calibration")
                                                             or final.model.fit_info.get("member_temperatures") or {})),
            "ledger_min_dwell": final.min_dwell,
            "ledger_risk_off_threshold": ("argmax" if final.risk_off_threshold is None else
                                          f"regime {final.risk_off_regime} at p ≥ {final.risk_off_threshold}"),
            "ledger_persistence_anchor": ("none" if final.persistence_anchor is None else
                                          f"the known regime unless another is at p ≥ {final.persistence_anchor}"),
            "epochs_final": final.model.fit_info.get("epochs"),
            "training_settings": dg.MetadataValue.json(config.reproducibility()),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "fold_table": dg.MetadataValue.md(markdown_table(result.fold_table())),
            "summary": dg.MetadataValue.md(result.summary()),
            "fold_records": f"market.fold_records, {len(records)} folds (walk-forward digest {digest})",
        })
        return final

    @ticker_check(asset=_model, name="no_leakage", blocking=True,
                  description="Verifies the fold records stored with the model's rows (market.fold_records) of the "
                              "ticker's current targets version: that rows, records and the production model are of "
                              "one run (their walk-forward digest), chronology, "
                              "embargo, scaler (recomputed) and labeler fit ranges inside training, the inner "
                              "validation tail embargoed from the part fit before it, calibration and feature "
                              "selection reading only that tail, window, horizon and labeler against the stored "
                              "labels, every stored out-of-sample row inside a verified test span, known_regime "
                              "recomputed at sampled dates from the fold's labeler run through each date only, and "
                              "feature causality by recomputation from truncated prices.")
    def _no_leakage(context: dg.AssetCheckExecutionContext, warehouse: Warehouse,
                    settings: RegimeSettings) -> dg.AssetCheckResult:
        scope = ticker_scope(context, settings)
        evidence = read_leakage_evidence(warehouse, scope, model)
        dates = evidence.features["date"].to_list()
        problems: list[str] = []
        records, sample_dates, known_checked = evidence.records, set(), 0
        where, rerun = f"{model} for {scope.describe()}", f"{asset_name} for {scope.ticker}"
        directory, legacy = artifact_directory(settings, asset_name, scope.ticker), legacy_folds_path(
            settings, asset_name, scope)
        if not records and legacy.exists():
            problems.append(f"market.fold_records holds no fold records of {where}, and {legacy} was written before "
                            f"they moved into the warehouse (with the rows, in one transaction) and is no longer read: "
                            f"re-materialize {rerun}")
        elif not records:
            problems.append(f"market.fold_records holds no fold records of {where}: materialize {rerun}")
        else:  # rows, records and the production model of one run
            problems += fold_records.consistency_problems(
                records, evidence.records_digest, evidence.oos, production.ProductionModel.saved_digest(directory),
                where=where, rerun=rerun, model_directory=str(directory))
            # the last training session and the first test session of every fold, recomputed from truncated prices
            sample_dates = {dt.date.fromisoformat(str(r[key])[:10]) for r in records
                            for key in ("train_end", "test_start") if r.get(key)}
            used_macro = sorted({f for r in records for f in r.get("features") or []
                                 if f in macro_inputs.MACRO_FEATURES})
            problems += leakage.verify_fold_records(records, dates, stored_labeler=evidence.labeler,
                                                    allowed_features=MODEL_FEATURES + macro_inputs.MACRO_FEATURES,
                                                    features=macro_inputs.with_macro(evidence.features, evidence.macro,
                                                                                     used_macro))
            if used_macro:  # recomputed at the same dates from the rows the point-in-time rule allows by then
                problems += macro_inputs.causality_problems(evidence.macro, dates, sorted(sample_dates),
                                                            scope.settings.macro_lag)
            problems += leakage.verify_oos_rows(records, evidence.oos, dates)  # every row of the version
            known_problems, known_checked = known_regime.verify_known_regime(records, evidence.oos, evidence.known)
            problems += known_problems
        problems += causality.causality_problems(evidence.prices, evidence.features, sorted(sample_dates))
        return dg.AssetCheckResult(passed=not problems, metadata={
            "ticker": scope.ticker,
            "targets_version": scope.targets_version,
            "horizon": scope.horizon,
            "folds_checked": len(records),
            "walk_forward_digest": evidence.records_digest or "none stored",
            "oos_rows_checked": evidence.oos.height,
            "feature_dates_recomputed": len(sample_dates),
            "known_regime_dates_recomputed": known_checked,
            "problems": bullets(problems),
        })

    return _model, _no_leakage


_built = [build_model_asset(model, kind) for model, kind in MODEL_ASSETS.items()]
model_assets = [asset for asset, _ in _built]
no_leakage_checks = [check for _, check in _built]
