"""The ``walk_forward_targets`` asset's computation: the folds and every fold's labels, computed once so every
model is judged on exactly the same targets, with each fold's mean return per regime and its risk-off regime."""
from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence

import numpy as np
import polars as pl

from regime_platform import storage
from regime_platform.modeling.folds import walk_forward_folds
from regime_platform.modeling.sequences import targets_at
from regime_platform.modeling.targets import PRODUCTION_FOLD, FoldTargets, WalkForwardTargets, label_rows
from regime_platform.modeling.training import Log, TrainingConfig, prepare_samples


def regime_mean_returns(
    returns: np.ndarray | None, labels: np.ndarray, first: int, last: int, n_classes: int
) -> dict[int, float | None]:
    """Mean daily return per regime over sessions ``first … last`` (labels -1 and NaN returns skipped)."""
    if returns is None:
        return {}
    r, y = np.asarray(returns, dtype=np.float64)[first:last + 1], labels[first:last + 1]
    out: dict[int, float | None] = {}
    for c in range(n_classes):
        sel = (y == c) & np.isfinite(r)
        out[c] = float(r[sel].mean()) if sel.any() else None
    return out


def risk_off_regime(mean_returns: dict[int, float | None]) -> int | None:
    """The regime with the lowest mean daily return (the one to be out of the market in)."""
    known = {c: m for c, m in mean_returns.items() if m is not None}
    return min(known, key=known.get) if known else None


def compute_walk_forward_targets(
    dates: Sequence[dt.date],
    X: np.ndarray,
    feature_names: Sequence[str],
    targets: FoldTargets,
    config: TrainingConfig,
    *,
    labeler: str,
    returns: np.ndarray | None = None,
    log: Log = None,
) -> WalkForwardTargets:
    """The folds of ``config`` and each fold's labels (a generated labeler refit per fold: the expensive part),
    plus the production labels — computed once, so every model is judged on exactly the same targets."""
    w, h = config.window, config.horizon
    samples = prepare_samples(dates, X, feature_names, targets, config)
    dates = samples.dates
    folds = walk_forward_folds(dates, samples.sample_t, w, h, config.min_train_sessions, config.refit,
                               config.max_folds, first_session=samples.first_session)
    labelled = set(targets.labelled_dates())
    last_labelled = max(d for d in dates if d in labelled)
    production = targets.fold_labels(last_labelled, None).align(dates)
    fold_labels, table, rows, unsettled = [], [], [], {}
    for fold in [*folds, None]:
        if fold is None:
            labels, number, train_t = production, PRODUCTION_FOLD, samples.sample_t
        else:
            t0 = time.perf_counter()
            labels = targets.fold_labels(fold.train_target_end, fold.test_target_end).align(dates)
            number, train_t = fold.fold, fold.train_t
            fold_labels.append(labels)
            unsettled[fold.fold] = int((targets_at(fold.test_t, h, labels.test_regime) < 0).sum())
            if log:
                log(f"fold {fold.fold} ({fold.test_year or 'single split'}): labels by `{labels.labeler}` fit "
                    f"{labels.fit_start or '—'} … {labels.fit_end or '—'} in {time.perf_counter() - t0:.1f} s"
                    + (f"; {unsettled[fold.fold]} test target(s) not yet settled, left unscored"
                       if unsettled[fold.fold] else ""))
        y = targets_at(train_t, h, labels.train_regime)
        train_t = train_t[y >= 0]
        means = regime_mean_returns(returns, labels.train_regime, int(train_t[0]), int(train_t[-1]) + h,
                                    labels.n_classes) if train_t.size else {}
        table.append({
            "labeler": labeler, "horizon": h, "fold": number,
            "test_year": fold.test_year if fold else None,
            "train_start": dates[train_t[0]] if train_t.size else None,
            "train_end": dates[train_t[-1]] if train_t.size else None,
            "train_target_end": fold.train_target_end if fold else last_labelled,
            "test_start": fold.test_start if fold else None, "test_end": fold.test_end if fold else None,
            "test_target_end": fold.test_target_end if fold else None,
            "labeler_fit_start": labels.fit_start, "labeler_fit_end": labels.fit_end,
            "truth_fit_end": labels.truth_fit_end,
            "n_classes": labels.n_classes,
            "state_mapping": json.dumps({str(k): v for k, v in labels.state_mapping.items()}, sort_keys=True),
            "regime_mean_returns": [means.get(c) for c in range(labels.n_classes)] if means else None,
            "risk_off_regime": risk_off_regime(means),
        })
        rows.append(label_rows(labeler, h, number, labels))
    fold_table = pl.DataFrame(table, schema=storage.body_schema("walk_forward_folds"))  # storage adds the keys
    return WalkForwardTargets(labeler, h, folds, fold_labels, production, bool(targets.user_labels), fold_table,
                              pl.concat(rows), unsettled)
