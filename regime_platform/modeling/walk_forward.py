"""The walk-forward evaluation: every model (baselines included) trained and tested fold by fold.

Per fold (cut by :mod:`regime_platform.modeling.folds`): the fold's labels (:mod:`regime_platform.modeling.targets`,
a generated labeler refit with fit range ≤ the last training target t + h), then the shared training set-up
(:func:`regime_platform.modeling.training.prepare_span`: targets, class balance of the fitted samples, scaler on the
training windows' sessions, early-stopping tail), every model's capacity and dwell chosen on the span's tail and the
choice fit on the whole training span (:func:`regime_platform.modeling.inner_validation.choose_and_fit`, the step the
production fit shares) and asked for the fold's test samples, and a fold record.

A fold whose training samples hold one regime is skipped with a warning (no classifier can learn from one
class); if every fold is skipped, that is an error. A regime missing from a fold's training samples is a
warning; see :mod:`regime_platform.labels.class_balance` for what the models do then.

Output: :class:`WalkForwardResult` — ``oos_predictions`` (exactly the columns of
``market.oos_predictions``), ``fold_records`` (what ``no_leakage`` verifies, see
:func:`regime_platform.modeling.leakage.verify_fold_records`), ``timings``.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from regime_platform import storage as warehouse
from regime_platform.modeling.feature_selection import select_span_features
from regime_platform.modeling.folds import Fold, embargo_gap, walk_forward_folds
from regime_platform.modeling.inner_validation import choose_and_fit
from regime_platform.modeling.known_regime_inputs import with_known_regime
from regime_platform.modeling.sequences import known_at, targets_at
from regime_platform.modeling.targets import FoldLabels, FoldTargets
from regime_platform.modeling.training import (
    Log,
    ModelsArg,
    Progress,
    SingleClassSpan,
    TrainingConfig,
    TrainingSpan,
    normalize_models,
    prepare_samples,
    prepare_span,
)
from regime_platform.modeling.walk_forward_targets import regime_mean_returns, risk_off_regime
from regime_platform.models.base import detail
from regime_platform.storage.files import to_jsonable

OOS_SCHEMA: dict[str, pl.DataType] = warehouse.body_schema("oos_predictions")  # storage adds the keys


def chosen_in_span(model: str, info: dict[str, Any]) -> str:
    """What the inner validation chose for one model in one fold, as the fold table shows it."""
    inner = info["inner_validation"] or {}  # empty when only the persistence anchor was left to the tail
    params = ", ".join(f"{k}={v}" for k, v in (inner.get("params") or {}).items())
    score = inner.get("score")
    threshold = ""
    if "risk_off_threshold" in inner:  # REGIME_RISK_OFF_THRESHOLD=tail
        theta = inner["risk_off_threshold"]["threshold"]
        threshold = f", risk-off at p ≥ {theta}" if theta is not None else ", argmax"
    if inner.get("recency_half_life_from") == "tail":  # REGIME_RECENCY_HALF_LIFE=tail
        life = inner["recency_half_life"]
        threshold += f", half-life {life}" if life is not None else ", unweighted"
    if "persistence_anchor" in info:  # REGIME_PERSISTENCE_ANCHOR
        anchor = info["persistence_anchor"]
        threshold += f", leaves the known regime at p ≥ {anchor}" if anchor is not None else ", no anchor"
    if not inner:
        return f"{model}: dwell {info.get('min_dwell')}{threshold}"
    if score is None:  # the tail could not choose: say why
        return f"{model}: default capacity, dwell {info.get('min_dwell')}{threshold} ({inner.get('note')})"
    shown = f"{score:.3f}" if isinstance(score, float) else score
    return (f"{model}: {params + ', ' if params else ''}dwell {info.get('min_dwell')}{threshold} "
            f"(tail {inner.get('scored_by')} {shown})")


@dataclass
class WalkForwardResult:
    oos_predictions: pl.DataFrame
    fold_records: list[dict[str, Any]]
    timings: list[dict[str, Any]]  # one per (model, fold): seconds, epochs
    folds: list[Fold]
    config: TrainingConfig
    feature_names: list[str]
    single_split: bool
    warnings: list[str] = field(default_factory=list)

    def fold_records_json(self) -> list[dict[str, Any]]:
        """The fold records as stored (market.fold_records, :mod:`regime_platform.modeling.fold_records`): dates as ISO
        text, numpy numbers as Python ones."""
        return to_jsonable(self.fold_records)

    def summary(self) -> str:
        lines = []
        if self.single_split:
            lines.append(self.folds[0].notes[0] if self.folds and self.folds[0].notes else "single chronological split")
        for f in self.folds:
            lines.append(f.describe())
        lines.extend(w for w in self.warnings if w not in lines)  # a single split's note is also a warning
        return "\n".join(lines)

    def fold_table(self) -> pl.DataFrame:
        """One row per fold: test span, training end, samples each model was fit on, class counts, warnings."""
        return pl.DataFrame([
            {"fold": r["fold"], "test_start": str(r["test_start"]), "test_end": str(r["test_end"]),
             "train_end": str(r["train_end"]), "n_fit": r["n_train"], "risk_off_regime": r.get("risk_off_regime"),
             "class_counts": str(r["class_counts"]),
             "chosen": "; ".join(chosen_in_span(m, info) for m, info in r["models"].items()
                                 if info.get("inner_validation") or info.get("anchor_choice")),
             "warnings": "; ".join(r.get("class_warnings", []) + r.get("class_errors", []))}
            for r in self.fold_records])

    def pooled_accuracy(self) -> float:
        scored = self.oos_predictions.filter(pl.col("true_regime").is_not_null())
        if scored.is_empty():
            return float("nan")
        return float((scored["predicted_regime"] == scored["true_regime"]).mean())


def walk_forward(
    dates: Sequence[dt.date],
    X: np.ndarray,
    feature_names: Sequence[str],
    targets: FoldTargets,
    models: ModelsArg,
    config: TrainingConfig = TrainingConfig(),
    *,
    returns: np.ndarray | None = None,
    include_baselines: bool = True,
    log: Log = None,
    progress: Progress = None,
) -> WalkForwardResult:
    """Run the walk-forward evaluation; see the module docstring.

    ``returns`` (optional, per session, e.g. ``ret_1d``): daily log returns; with them each fold record holds
    the mean return per regime over its training span and the risk-off regime (the lowest).
    ``log(str)``: fold plans, class-balance warnings, one line per model per epoch.
    ``progress(done, total, what)``: after each (fold, model) fit.
    """
    w, h = config.window, config.horizon
    samples = prepare_samples(dates, X, feature_names, targets, config)
    dates = samples.dates
    specs = normalize_models(models, include_baselines)
    folds = walk_forward_folds(
        dates, samples.sample_t, w, h, config.min_train_sessions, config.refit, config.max_folds,
        first_session=samples.first_session,
    )
    single = bool(folds and folds[0].single_split)
    warnings: list[str] = []

    def warn(msg: str) -> None:
        warnings.append(msg)
        if log:
            log(msg)

    if single:
        warn(folds[0].notes[0])

    rows: dict[str, list] = {c: [] for c in OOS_SCHEMA}
    records: list[dict[str, Any]] = []
    timings: list[dict[str, Any]] = []
    total, done = len(folds) * len(specs), 0

    for fold in folds:
        where = f"fold {fold.fold}" + (f" ({fold.test_year})" if fold.test_year else "")
        labels = targets.fold_labels(fold.train_target_end, fold.test_target_end).align(dates)
        K = labels.n_classes
        yt_all = targets_at(fold.test_t, h, labels.test_regime)
        test_t, y_test = fold.test_t[yt_all >= 0], yt_all[yt_all >= 0]
        if test_t.size == 0:
            warn(f"{where}: skipped, the fold's labeler left no test targets")
            done += len(specs)
            continue
        try:
            span = prepare_span(samples, fold.train_t, labels, config, where)
        except SingleClassSpan as exc:
            warn(f"{exc} This fold is skipped.")
            done += len(specs)
            continue
        if (y_test >= K).any():
            raise ValueError(f"{where}: a test label is ≥ n_classes={K}")
        fold_samples, span, selection = select_span_features(samples, span, labels, config, where)
        fold_samples, span, known_input = with_known_regime(fold_samples, span, labels, config, where,
                                                            targets.user_labels)
        if selection and log:
            log(f"{where}: features chosen on the training span's tail: {', '.join(selection['selected'])}"
                + (f" ({selection['note']})" if selection.get("note") else ""))
        class_warnings, class_errors = span.class_messages()
        for msg in class_warnings + class_errors:
            warn(msg)

        W_test = span.windows(test_t)
        known_test = known_at(test_t, labels.known_regime)
        if log:
            detail(log)(f"{where}: train {dates[span.train_t[0]]}…{dates[span.train_t[-1]]} ({span.train_t.size} samples, "
                f"the last {span.val_t.size} also the epoch-selection tail), test {dates[test_t[0]]}…"
                f"{dates[test_t[-1]]} ({test_t.size}), embargo "
                f"{embargo_gap(int(span.train_t[-1]), int(test_t[0]), w, h)} sessions")

        model_info: dict[str, dict[str, Any]] = {}
        for name, params in specs:
            t0 = time.perf_counter()
            fitted = choose_and_fit(name, params, span, labels, config, returns=returns, where=where, log=log)
            model, dwell, inner = fitted.model, fitted.min_dwell, fitted.inner
            proba = model.predict_proba(W_test, known_regime=known_test)
            decided = fitted.decide(proba, known_test)
            seconds = time.perf_counter() - t0
            # the run time goes to `timings`, not the record: the same inputs store the same records
            info = {"min_dwell": dwell, "risk_off_threshold": fitted.risk_off_threshold,
                    "recency_half_life": fitted.recency_half_life,
                    **({"persistence_anchor": fitted.persistence_anchor, "anchor_choice": fitted.anchor_choice}
                       if config.persistence_anchor is not None else {}),
                    "threshold_guards": fitted.risk_off_regime, "inner_validation": inner, "n_fit": model.fit_info["n_fit"],
                    "epochs": model.fit_info.get("epochs"), "epochs_selected": model.fit_info.get("epochs_selected"),
                    "n_epoch_selection_fit": model.fit_info.get("n_epoch_selection_fit"), "params": model.params,
                    "calibration": model.fit_info.get("calibration"),
                    "member_calibration": model.fit_info.get("member_calibration")}
            model_info[name] = info
            timings.append({"model": name, "fold": fold.fold, "seconds": seconds, "epochs": info["epochs"],
                            "n_fit": info["n_fit"], "n_val": int(span.val_t.size), "n_test": int(test_t.size)})
            _append_rows(rows, name, fold.fold, dates, test_t, h, proba, decided, y_test, known_test)
            done += 1
            summary = f"{where} {name}: {fitted.summary()}, in {seconds:.1f} s"  # the fold's one line at INFO
            if progress:
                progress(done, total, summary)
            elif log:
                log(summary)

        records.append(fold_record(fold, span, labels, targets, test_t, fold_samples.feature_names, config, returns,
                                   class_warnings, class_errors, model_info, selection, known_input))

    if folds and not records:
        raise ValueError(f"every walk-forward fold was skipped, so nothing was evaluated; the last reason: "
                         f"{warnings[-1]}")
    frame = pl.DataFrame(rows, schema=OOS_SCHEMA)
    return WalkForwardResult(frame, records, timings, folds, config, samples.feature_names, single, warnings)


def _append_rows(rows: dict[str, list], name: str, fold: int, dates: list[dt.date], test_t: np.ndarray, h: int,
                 proba: np.ndarray, decided: np.ndarray, y_test: np.ndarray, known_test: np.ndarray) -> None:
    n = test_t.size
    rows["model"] += [name] * n
    rows["fold"] += [fold] * n
    rows["as_of"] += [dates[t] for t in test_t]
    rows["target_date"] += [dates[t + h] for t in test_t]
    rows["horizon"] += [h] * n
    rows["predicted_regime"] += decided.tolist()
    rows["probabilities"] += proba.tolist()
    rows["true_regime"] += y_test.tolist()
    rows["known_regime"] += [None if k < 0 else int(k) for k in known_test]


def fold_record(
    fold: Fold, span: TrainingSpan, labels: FoldLabels, targets: FoldTargets, test_t: np.ndarray,
    feature_names: list[str], config: TrainingConfig, returns: np.ndarray | None,
    class_warnings: list[str], class_errors: list[str], model_info: dict[str, dict[str, Any]],
    feature_selection: dict[str, Any] | None = None, known_regime_input: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What ``no_leakage`` verifies and a person audits: ranges, embargo, fit sizes, labeler and scaler."""
    dates, w, h = labels.dates, config.window, config.horizon
    train_t, val_t = span.train_t, span.val_t
    T, t_last = int(test_t[0]), int(train_t[-1])
    mean_returns = regime_mean_returns(returns, labels.train_regime, int(train_t[0]), t_last + h, labels.n_classes)
    return {
        "fold": fold.fold,
        "test_year": fold.test_year,
        "single_split": fold.single_split,
        "window": w,
        "horizon": h,
        "train_start": dates[train_t[0]],
        "train_end": dates[t_last],
        "train_target_end": dates[t_last + h],
        "test_start": dates[T],
        "test_end": dates[test_t[-1]],
        "test_target_end": dates[test_t[-1] + h],
        "first_test_t": T,
        "last_train_t": t_last,
        "embargo_sessions": embargo_gap(t_last, T, w, h),
        "embargo_required": w + h,
        "validation_start": dates[val_t[0]] if val_t.size else None,
        "validation_end": dates[val_t[-1]] if val_t.size else None,
        "epoch_selection_fit_end": dates[span.fit_t[-1]] if val_t.size else None,
        "n_train": int(train_t.size),
        "n_epoch_selection_fit": int(span.fit_t.size) if val_t.size else 0,
        "n_validation": int(val_t.size),
        "n_test": int(test_t.size),
        # test sessions whose target had not settled (too few later sessions in the data, DESIGN §3a): unscored
        "n_test_unsettled": int(fold.test_t.size - test_t.size),
        "scaler_fit_start": span.scaler.fit_start,
        "scaler_fit_end": span.scaler.fit_end,
        "scaler": {"mean": span.scaler.to_dict()["mean"], "std": span.scaler.to_dict()["std"]},
        "labeler": labels.labeler,
        "labeler_fit_start": labels.fit_start,
        "labeler_fit_end": labels.fit_end,
        "truth_fit_end": labels.truth_fit_end,  # the test targets' labeler (truth only, never an input)
        "state_mapping": {str(k): v for k, v in labels.state_mapping.items()},
        "user_labels": bool(targets.user_labels),
        "n_classes": labels.n_classes,
        "features": feature_names,
        "feature_selection": feature_selection,
        **({"known_regime_input": {"setting": config.known_regime_input, **known_regime_input}}
           if known_regime_input is not None else {}),
        "calibration": config.calibration,
        "training_settings": config.reproducibility(),
        "recency_half_life": config.recency_half_life,  # the setting; each model's half-life is in "models"
        "decision_rule": {"min_dwell": config.min_dwell, "tune_capacity": config.tune_capacity,
                          "inner_score": config.inner_score, "risk_off_threshold": config.risk_off_threshold,
                          "per_model_threshold": {m: i.get("risk_off_threshold") for m, i in model_info.items()},
                          **({"persistence_anchor": config.persistence_anchor,
                              "per_model_anchor": {m: i.get("persistence_anchor") for m, i in model_info.items()}}
                             if config.persistence_anchor is not None else {}),
                          "applies_to": "non-baseline models' predicted_regime",
                          "per_model": {m: i.get("min_dwell") for m, i in model_info.items()}},
        "class_counts": span.balance.counts,
        "class_warnings": class_warnings,
        "class_errors": class_errors,
        "regime_mean_return": mean_returns,
        "risk_off_regime": risk_off_regime(mean_returns),
        "models": model_info,
    }
