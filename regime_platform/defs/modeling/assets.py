"""modeling: one asset per model — walk-forward out-of-sample predictions, a production fit, a leakage check."""
import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from regime_platform import causality, labels, leakage, training, warehouse as wh
from regime_platform.defs.features.assets import features
from regime_platform.defs.labels.assets import labeler_frame, regime_labels
from regime_platform.defs.metadata import markdown_table
from regime_platform.defs.resources import RegimeSettings, Warehouse
from regime_platform.features import MODEL_FEATURES

# One line per model: asset name suffix, registry name, kind shown in the UI.
MODEL_ASSETS = {
    "lstm": "pytorch",
    "cnn": "pytorch",
    "random_forest": "scikitlearn",
    "logistic": "scikitlearn",
    "majority": "baseline",
    "persistence": "baseline",
}

wh.register_table("oos_predictions", "model VARCHAR NOT NULL, fold INTEGER, as_of DATE NOT NULL, "
                  "target_date DATE NOT NULL, horizon INTEGER NOT NULL, predicted_regime INTEGER, "
                  "probabilities DOUBLE[], true_regime INTEGER, known_regime INTEGER")


@dataclass
class TrainingInputs:
    dates: list
    X: np.ndarray
    feature_names: list[str]
    targets: object  # training.GivenLabels | training.RefitLabels
    labeler: str


def training_inputs(warehouse: Warehouse, settings: RegimeSettings) -> TrainingInputs:
    """Features and labels as the domain training code takes them (a user's file as given, else a refit labeler)."""
    s = settings.settings()
    with warehouse.connect() as con:
        frame = labeler_frame(con, s.ticker)
        stored = con.execute("SELECT date, regime, known_regime, labeler FROM market.regime_labels ORDER BY date").pl()
    if stored.is_empty():
        raise ValueError("market.regime_labels is empty: materialize regime_labels first.")
    dates = frame["date"].to_list()
    X = frame.select(MODEL_FEATURES).fill_null(np.nan).to_numpy().astype(np.float64)
    labeler = stored["labeler"][0]
    if labeler == "user":
        aligned = frame.select("date").join(stored, on="date", how="left")
        targets = training.GivenLabels(dates, aligned["regime"].fill_null(-1).to_numpy(),
                                       aligned["known_regime"].fill_null(-1).to_numpy())
    else:
        usable = labels.labelable(frame, labels.make_labeler(labeler))
        targets = training.RefitLabels(usable, lambda: labels.make_labeler(labeler), name=labeler)
    return TrainingInputs(dates, X, list(MODEL_FEATURES), targets, labeler)


def training_config(settings: RegimeSettings) -> training.TrainingConfig:
    s = settings.settings()
    return training.TrainingConfig(window=s.window, horizon=s.horizon, epochs=s.epochs, max_folds=s.max_folds)


def folds_path(settings: RegimeSettings, asset_name: str) -> Path:
    return settings.settings().artifacts_dir / asset_name / "folds.json"


def build_model_asset(model: str, kind: str) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    asset_name = f"{model}_model"

    @dg.asset(
        name=asset_name,
        group_name="modeling",
        deps=[regime_labels, features],
        pool="duckdb",
        io_manager_key="artifacts",
        kinds={kind},
        description=f"`{model}`: walk-forward evaluation (expanding window, yearly refits, embargo, labeler and "
                    "scaler refit inside each fold) into market.oos_predictions, then a production fit on all "
                    "labelled history saved under data/artifacts/.",
    )
    def _model(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: RegimeSettings) -> training.ProductionModel:
        inputs = training_inputs(warehouse, settings)
        config = training_config(settings)
        started = time.perf_counter()
        result = training.walk_forward(
            inputs.dates, inputs.X, inputs.feature_names, inputs.targets, [model], config,
            include_baselines=False, log=context.log.info,
            progress=lambda done, total, what: context.log.info(f"[{done}/{total}] {what}"))
        for warning in result.warnings:
            context.log.warning(warning)
        result.write_fold_records(folds_path(settings, asset_name))
        oos = result.oos_predictions
        with warehouse.connect() as con:
            wh.replace_rows(con, "oos_predictions", oos, "model = ? AND horizon = ?", [model, config.horizon])
        production = training.fit_final(inputs.dates, inputs.X, inputs.feature_names, inputs.targets, [model],
                                        config, include_baselines=False, log=context.log.info)[0]
        hits = oos.filter(pl.col("true_regime").is_not_null())
        accuracy = float((hits["predicted_regime"] == hits["true_regime"]).mean()) if hits.height else float("nan")
        per_fold = pl.DataFrame([{k: r[k] for k in ("fold", "test_start", "test_end", "train_end")}
                                 | {"train_samples": sum(r["class_counts"].values()),
                                    "class_counts": str(r["class_counts"]),
                                    "warnings": "; ".join(r.get("class_warnings", []) + r.get("class_errors", []))}
                                 for r in result.fold_records_json()])
        context.add_output_metadata({
            "model_version": production.model_version,
            "labeler": inputs.labeler,
            "folds": len(result.fold_records),
            "single_split": result.single_split,
            "oos_predictions": oos.height,
            "oos_accuracy": accuracy,
            "epochs_final": production.model.fit_info.get("epochs"),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "fold_table": dg.MetadataValue.md(markdown_table(per_fold)),
            "summary": dg.MetadataValue.md(result.summary()),
            "folds_json": dg.MetadataValue.path(str(folds_path(settings, asset_name))),
        })
        return production

    @dg.asset_check(asset=_model, name="no_leakage", blocking=True, pool="duckdb",
                    description="Verifies the fold records: chronology, embargo, scaler and labeler fit ranges "
                                "inside training, allowed features, and feature causality by recomputing a sample "
                                "of stored feature rows from truncated prices.")
    def _no_leakage(warehouse: Warehouse, settings: RegimeSettings) -> dg.AssetCheckResult:
        path = folds_path(settings, asset_name)
        if not path.exists():
            return dg.AssetCheckResult(passed=False, metadata={"problem": f"{path} is missing: materialize {asset_name}"})
        records = training.read_fold_records(path)
        s = settings.settings()
        with warehouse.connect() as con:
            stored_features = con.execute("SELECT * FROM market.features WHERE ticker = ? ORDER BY date",
                                          [s.ticker]).pl()
            prices = con.execute("SELECT date, ticker, adj_close, volume FROM market.ohlcv WHERE ticker = ? "
                                 "ORDER BY date", [s.ticker]).pl()
        # the last training session and the first test session of every fold, recomputed from truncated prices
        sample_dates = sorted({dt.date.fromisoformat(str(r[key])) for r in records for key in ("train_end", "test_start")})
        problems = leakage.verify_fold_records(
            records, stored_features["date"].to_list(), s.window, s.horizon,
            user_labels=records[0].get("labeler") == "user", allowed_features=MODEL_FEATURES,
            feature_causality_check=lambda: causality.causality_problems(prices, stored_features, sample_dates))
        return dg.AssetCheckResult(passed=not problems, metadata={
            "folds_checked": len(records),
            "feature_dates_recomputed": len(sample_dates),
            "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"),
        })

    return _model, _no_leakage


_built = [build_model_asset(model, kind) for model, kind in MODEL_ASSETS.items()]
model_assets = [asset for asset, _ in _built]
no_leakage_checks = [check for _, check in _built]
