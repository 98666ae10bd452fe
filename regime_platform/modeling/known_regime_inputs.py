"""The regime known at t as a model input (``TrainingConfig.known_regime_input``): what persistence exploits, given to the
models so they can learn when to depart from it.

Two inputs per session, both from the fold's own causal assignment ``FoldLabels.known_regime`` (the regime known
after the close of t, DESIGN §3a: a generated labeler's online label from data through t, fit on the fold's training
span; a user's file, its label ``REGIME_LABEL_LAG`` sessions earlier):

* ``known_regime_<k>`` — 1 where regime k is the one known at t, else 0 (all 0 where no regime is known yet);
* ``sessions_since_change`` — log(1 + the sessions since the known regime last changed), 0 where none is known.

Both read the known regime through t only, so a window ending at t reads nothing after t. They are appended to a
fold's samples after any feature selection and scaled with the span's scaler like every other input. A user's file
is only as honest as its declared label lag (a bear market dated from its peak is known months later), so ``on``
adds them for a generated labeler only and ``always`` for a user's file too.

It is a walk-forward measurement (``benchmarks/bench_forecast_candidates.py``, runs `known regime`), not a setting:
measured on both label settings it loses (docs/results.md, "The known regime as an input, fold by fold"), so the
production fit, the ledger and the explanations do not carry it, and :func:`production_refusal` says so. Pure numpy,
no Dagster.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from regime_platform.modeling.targets import FoldLabels
from regime_platform.modeling.training import Samples, TrainingConfig, TrainingSpan, prepare_span

SINCE_CHANGE = "sessions_since_change"


def input_names(n_classes: int) -> list[str]:
    return [f"known_regime_{k}" for k in range(n_classes)] + [SINCE_CHANGE]


def known_regime_columns(known: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_sessions, n_classes + 1): the one-hot known regime and log(1 + sessions since it last changed), in the
    order of :func:`input_names`; row t depends on ``known[: t + 1]`` only."""
    known = np.asarray(known, dtype=np.int64)
    if known.size and known.max() >= n_classes:
        raise ValueError(f"a known regime id is ≥ n_classes={n_classes}")
    valid = known >= 0
    onehot = np.zeros((known.size, n_classes))
    onehot[np.flatnonzero(valid), known[valid]] = 1.0
    # a run restarts where the known regime changes or is unknown; its length at t is t minus the run's first session
    starts = ~valid | np.r_[True, known[1:] != known[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(known.size), 0))
    since = np.where(valid, np.log1p(np.arange(known.size) - first), 0.0)
    return np.column_stack([onehot, since])


def production_refusal(config: TrainingConfig) -> str | None:
    """The sentence refusing a production fit with the known-regime input on; None when it is off."""
    if config.known_regime_input == "off":
        return None
    return (f"known_regime_input={config.known_regime_input!r} is a walk-forward measurement "
            "(benchmarks/bench_forecast_candidates.py); the production model, the ledger and the explanations do not "
            "read the known regime as an input, so fit production with known_regime_input='off'.")


def applies(config: TrainingConfig, user_labels: bool) -> bool:
    return config.known_regime_input == "always" or (config.known_regime_input == "on" and not user_labels)


def with_known_regime(samples: Samples, span: TrainingSpan, labels: FoldLabels, config: TrainingConfig, where: str,
                      user_labels: bool) -> tuple[Samples, TrainingSpan, dict[str, Any] | None]:
    """The fold's samples with the known-regime inputs appended and its span rebuilt on them (the scaler refit on the
    training windows), and what the fold record says; unchanged (and no record) when the setting is off, and
    unchanged with a note for a user's file under ``on``."""
    if config.known_regime_input == "off":
        return samples, span, None
    if not applies(config, user_labels):
        return samples, span, {"added": [], "note": "left out for a user's labels file, which is only as honest as "
                                                    "REGIME_LABEL_LAG; known_regime_input='always' adds it"}
    names = input_names(labels.n_classes)
    columns = known_regime_columns(labels.known_regime, labels.n_classes)
    extended = Samples(samples.dates, np.hstack([samples.X, columns]), [*samples.feature_names, *names],
                       samples.sample_t, samples.first_session)
    return extended, prepare_span(extended, span.train_t, labels, config, where), {"added": names, "note": ""}
