"""The anchor strategies: rules research already offers, on the backtest's dates and convention, beside the models.

- `vol_target`: exposure min(1, 10 % / trailing volatility), the volatility the annualized sample std of the 20
  daily log returns ending at t (flat until 20 returns exist). Positions lie in [0, 1]; the cost is charged per
  unit of turnover like every other strategy.
- `jump_signal`: the statistical jump model's own online state as the signal, flat in its bear state (Shu, Yu &
  Mulvey 2024, "Downside risk reduction using regime-switching signals: a statistical jump model approach").
  Inputs: the exponentially weighted downside deviation of daily log returns at half-life 10 (log) and the EWM
  Sortino ratios at half-lives 20 and 60 — causal. Two states. Per walk-forward fold, everything is decided
  inside that fold's training span: the inputs are standardized on it, the jump penalty is chosen from a grid by
  the Sharpe ratio of the signal over the span's last two years (fit on the years before them, states online,
  the same convention and cost), the model is refit on the whole span with that penalty, and the bear state is
  the state with the lower mean daily return over the span. The test dates get `predict_online` of that fit
  run from the start of the span (row t uses rows ≤ t only).

Pure numpy/polars + jumpmodels, no Dagster.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from regime_platform.calendar import SQRT_SESSIONS_PER_YEAR
from regime_platform.evaluation.strategy import DEFAULT_COST_BP, performance, run_signals
from regime_platform.labels.labelers import Standardized, ewm_return_shape

VOL_TARGET = "vol_target"
JUMP_SIGNAL = "jump_signal"
ANCHORS = (JUMP_SIGNAL, VOL_TARGET)
TARGET_VOLATILITY = 0.10
VOL_WINDOW = 20
DOWNSIDE_HALF_LIFE = 10
SORTINO_HALF_LIVES = (20, 60)
JUMP_PENALTIES = (10.0, 50.0, 250.0)
JUMP_INITS = 4  # starts per fit: jumpmodels defaults to 10, which takes about 4× as long per fit
VALIDATION_SESSIONS = 504
MIN_FIT_SESSIONS = 504


class TooShort(ValueError):
    """A fold's training span is too short for the jump signal to choose its penalty inside it."""


def log_returns(adj_close: np.ndarray) -> np.ndarray:
    """r_t = ln(P_t / P_{t−1}); NaN on the first session."""
    p = np.asarray(adj_close, dtype=float)
    return np.concatenate([[np.nan], np.diff(np.log(p))])


def _on(price_dates: list[dt.date], values: np.ndarray, signal_dates: list[dt.date]) -> np.ndarray:
    index = {d: i for i, d in enumerate(price_dates)}
    return np.array([values[index[d]] for d in signal_dates])


def vol_target_signals(price_dates: list[dt.date], adj_close: np.ndarray, signal_dates: list[dt.date],
                       target: float = TARGET_VOLATILITY, window: int = VOL_WINDOW) -> np.ndarray:
    """min(1, target / annualized std of the `window` log returns ending at t); 0 while warming up."""
    r = pl.Series(log_returns(adj_close)).fill_nan(None)
    vol = r.rolling_std(window, ddof=1).to_numpy() * SQRT_SESSIONS_PER_YEAR
    with np.errstate(divide="ignore", invalid="ignore"):
        exposure = np.where(np.isfinite(vol) & (vol > 0), np.minimum(1.0, target / vol), 0.0)
    return _on(price_dates, exposure, signal_dates)


def jump_inputs(adj_close: np.ndarray) -> np.ndarray:
    """(n, 3): log EWM downside deviation (half-life 10), EWM Sortino ratios (half-lives 20, 60); causal."""
    r = log_returns(adj_close)
    _, dd = ewm_return_shape(r, DOWNSIDE_HALF_LIFE)
    columns = [np.log(dd)]
    for hl in SORTINO_HALF_LIVES:
        mean, downside = ewm_return_shape(r, hl)
        columns.append(mean / downside)
    return np.column_stack(columns)


@dataclass
class JumpFit:
    """One fold's jump signal, decided inside its training span."""

    fold: int
    train_start: dt.date
    train_end: dt.date
    penalty: float
    bear_state: int
    validation_sharpe: dict[float, float] = field(default_factory=dict)
    first_row: int = 0
    model: object = field(default=None, repr=False)

    def describe(self) -> dict:
        return {"fold": self.fold, "train_start": str(self.train_start), "train_end": str(self.train_end),
                "jump_penalty": self.penalty, "bear_state": self.bear_state,
                "validation_sharpe": {f"{k:g}": (None if not np.isfinite(v) else round(v, 4))
                                      for k, v in self.validation_sharpe.items()}}


class _JumpState:
    """A two-state jump model fit on some rows (inputs standardized on them), read online over others."""

    def __init__(self, inputs: np.ndarray, fit_rows: slice, penalty: float, seed: int):
        from jumpmodels.jump import JumpModel

        self.scaler = Standardized(clip=3.0).fit(inputs[fit_rows])
        self.model = JumpModel(n_components=2, jump_penalty=penalty, random_state=seed, n_init=JUMP_INITS)
        self.model.fit(self.scaler.transform(inputs[fit_rows]))

    def online(self, inputs: np.ndarray, rows: slice) -> np.ndarray:
        return np.asarray(self.model.predict_online(self.scaler.transform(inputs[rows])))


def _bear_state(states: np.ndarray, returns: np.ndarray) -> int:
    """The state with the lower mean daily return (a state never visited is not the bear state)."""
    means = [np.nanmean(returns[states == s]) if (states == s).any() else np.inf for s in (0, 1)]
    return int(np.argmin(means))


def fit_jump_signal(fold: int, price_dates: list[dt.date], adj_close: np.ndarray, train_start: dt.date,
                    train_end: dt.date, cost_bp: float = DEFAULT_COST_BP, penalties=JUMP_PENALTIES,
                    seed: int = 0) -> JumpFit:
    """Choose the penalty and the bear state inside [train_start, train_end] (see the module docstring)."""
    dates = np.array(price_dates, dtype="datetime64[D]")
    first = max(1, int(np.searchsorted(dates, np.datetime64(train_start))))  # row 0 has no return
    last = int(np.searchsorted(dates, np.datetime64(train_end), side="right")) - 1
    if last - first + 1 < MIN_FIT_SESSIONS:
        raise TooShort(f"fold {fold}: its training span {train_start} … {train_end} holds {last - first + 1} "
                         f"sessions, fewer than the {MIN_FIT_SESSIONS} the jump signal needs to choose its penalty.")
    inputs, returns = jump_inputs(adj_close), log_returns(adj_close)
    scores: dict[float, float] = {}
    split = last + 1 - VALIDATION_SESSIONS
    if split - first >= MIN_FIT_SESSIONS:
        validation_dates = list(price_dates[split:last + 1])
        for penalty in penalties:
            states = _JumpState(inputs, slice(first, split), penalty, seed).online(inputs, slice(first, last + 1))
            bear = _bear_state(states[: split - first], returns[first:split])
            signals = (states[split - first:] != bear).astype(float)
            run = run_signals(JUMP_SIGNAL, list(price_dates[: last + 1]), adj_close[: last + 1], validation_dates,
                              signals, cost_bp)
            scores[penalty] = performance(run)["sharpe"]
        finite = {p: s for p, s in scores.items() if np.isfinite(s)}
        chosen = max(finite, key=lambda p: (finite[p], p)) if finite else float(np.median(penalties))
    else:  # too short to hold out two years: the grid's middle, said in the fit record (no scores)
        chosen = float(sorted(penalties)[len(penalties) // 2])
    final = _JumpState(inputs, slice(first, last + 1), chosen, seed)
    states = final.online(inputs, slice(first, last + 1))
    fit = JumpFit(fold, train_start, train_end, chosen, _bear_state(states, returns[first:last + 1]), scores)
    fit.first_row, fit.model = first, final
    return fit


def jump_signals(price_dates: list[dt.date], adj_close: np.ndarray, signal_dates: list[dt.date],
                 fold_of: Mapping[dt.date, int], spans: Mapping[int, tuple[dt.date, dt.date]],
                 cost_bp: float = DEFAULT_COST_BP, seed: int = 0) -> tuple[np.ndarray, list[JumpFit]]:
    """The jump signal (1 = long, 0 = flat in the bear state) on `signal_dates`, each from its fold's fit.

    `fold_of`: signal date → fold; `spans`: fold → (train_start, train_end) from market.walk_forward_folds."""
    index = {d: i for i, d in enumerate(price_dates)}
    inputs = jump_inputs(adj_close)
    out = np.full(len(signal_dates), np.nan)
    fits = []
    for fold in sorted({fold_of[d] for d in signal_dates}):
        if fold not in spans:
            raise ValueError(f"fold {fold} has no training span in market.walk_forward_folds: re-materialize "
                             "walk_forward_targets for this ticker.")
        fit = fit_jump_signal(fold, price_dates, adj_close, *spans[fold], cost_bp=cost_bp, seed=seed)
        fits.append(fit)
        positions = [n for n, d in enumerate(signal_dates) if fold_of[d] == fold]
        stop = max(index[signal_dates[n]] for n in positions)
        states = fit.model.online(inputs, slice(fit.first_row, stop + 1))  # from the span's start: causal
        for n in positions:
            out[n] = float(states[index[signal_dates[n]] - fit.first_row] != fit.bear_state)
    return out, fits


__all__ = ["TooShort", "VOL_TARGET", "JUMP_SIGNAL", "ANCHORS", "TARGET_VOLATILITY", "VOL_WINDOW", "JUMP_PENALTIES",
           "VALIDATION_SESSIONS", "vol_target_signals", "jump_inputs", "JumpFit", "fit_jump_signal", "jump_signals"]
