"""An independent recomputation of the pooled metrics and the backtest, for the `metrics_reproducible` check.

A different code path from metrics.py and backtest.py on purpose: the inputs come from SQL aggregates over
the stored rows (confusion counts, transition counts, long/flat signals joined to the fold's risk-off regime,
daily returns and the 200-session mean as window functions — warehouse.audit_*), the arithmetic is plain
vectorized numpy (no loop over sessions). One exception: the Brier score is not re-derived but called
(:func:`regime_platform.evaluation.metrics.brier`) — its definition is a convention (halved, multi-class) written
once for the platform, so the audit checks the stored value against the probabilities read back by SQL, not a
second copy of the formula that could drift. Then `compare` lists every stored value that differs. No Dagster here.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from regime_platform.calendar import SESSIONS_PER_YEAR, SQRT_SESSIONS_PER_YEAR
from regime_platform.evaluation.anchors import TARGET_VOLATILITY
from regime_platform.evaluation.metrics import brier

TOLERANCE = 1e-9
COUNT_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "transition_count", "transition_recall", "brier")
BACKTEST_MEASURES = ("ann_return", "ann_vol", "sharpe", "max_drawdown", "switches", "time_in_market")


def pooled_metrics(confusion: pl.DataFrame, transitions: pl.DataFrame, probabilities: pl.DataFrame) -> pl.DataFrame:
    """model, horizon, metric, value from confusion counts, transition counts and the stored probabilities."""
    rows = []
    for (model, horizon), group in confusion.group_by(["model", "horizon"], maintain_order=True):
        k = int(max(group["true_regime"].max(), group["predicted_regime"].max())) + 1
        m = np.zeros((k, k))
        m[group["true_regime"].to_numpy(), group["predicted_regime"].to_numpy()] = group["n"].to_numpy()
        truth, forecast, hits = m.sum(axis=1), m.sum(axis=0), np.diag(m)
        recall = np.divide(hits, truth, out=np.zeros(k), where=truth > 0)
        precision = np.divide(hits, forecast, out=np.zeros(k), where=forecast > 0)
        f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=precision + recall > 0)
        present = (truth > 0) | (forecast > 0)
        values = {"accuracy": hits.sum() / m.sum(), "balanced_accuracy": recall[truth > 0].mean(),
                  "macro_f1": f1[present].mean()}
        t = transitions.filter((pl.col("model") == model) & (pl.col("horizon") == horizon))
        values["transition_count"] = float(t["transition_count"].sum()) if t.height else 0.0
        recalls = (t["transition_hits"].cast(pl.Float64) / t["transition_count"].cast(pl.Float64)).to_numpy() \
            if t.height else np.array([])  # SQL sums are DECIMAL: divide as floats
        values["transition_recall"] = float(recalls.min()) if recalls.size else None  # the worst direction
        p = probabilities.filter((pl.col("model") == model) & (pl.col("horizon") == horizon))
        values["brier"] = brier(p["true_regime"].to_numpy(), p["probabilities"].to_list(), k)
        rows += [{"model": model, "horizon": int(horizon), "metric": name, "value": None if v is None else float(v)}
                 for name, v in values.items()]
    return pl.DataFrame(rows, schema={"model": pl.Utf8, "horizon": pl.Int64, "metric": pl.Utf8, "value": pl.Float64})


def strategy_measures(price_dates: np.ndarray, daily_return: np.ndarray, signal_dates: np.ndarray,
                      signals: np.ndarray, cost_bp: float, cash_return: np.ndarray | None = None) -> dict[str, float]:
    """The backtest convention, vectorized: the position of session j is the signal of session j − 2; the flat part
    earns ``cash_return`` of the session (0 when None) and Sharpe is on the returns in excess of it."""
    at = np.searchsorted(price_dates, signal_dates)
    first, last = at.min(), at.max()
    stop = min(last + 2, len(price_dates) - 1)
    decided = np.full(len(price_dates) + 2, np.nan)
    decided[at + 2] = signals
    filled = decided.copy()
    known = np.where(np.isfinite(filled), np.arange(len(filled)), 0)
    filled = filled[np.maximum.accumulate(known)]
    filled[: first + 2] = 0.0
    filled = np.nan_to_num(filled)
    positions = filled[first + 1: stop + 1]
    returns = daily_return[first + 1: stop + 1]
    cash = np.zeros(len(returns)) if cash_return is None else cash_return[first + 1: stop + 1]
    turnover = np.abs(np.diff(positions, prepend=0.0))
    net = positions * returns + (1.0 - positions) * cash - turnover * cost_bp / 1e4
    log_equity = np.cumsum(np.log1p(net))
    drawdown = np.exp(log_equity - np.maximum(np.maximum.accumulate(log_equity), 0.0)) - 1
    std, excess = net.std(ddof=1), net - cash
    excess_std = excess.std(ddof=1)
    return {"ann_return": float(np.exp(log_equity[-1] * SESSIONS_PER_YEAR / len(net)) - 1),
            "ann_vol": float(std * SQRT_SESSIONS_PER_YEAR),
            "sharpe": float(excess.mean() / excess_std * SQRT_SESSIONS_PER_YEAR) if excess_std > 0 else None,
            "max_drawdown": float(drawdown.min()), "switches": float(round(turnover.sum())),
            "time_in_market": float(positions.mean())}


def backtest_measures(signals: pl.DataFrame, prices: pl.DataFrame, cost_bp: float,
                      recorded: dict[int, dict[str, dict]] | None = None) -> pl.DataFrame:
    """strategy, horizon, measure, value for every model and the rules on the models' common dates.

    vol_target is recomputed from the trailing std in `prices`; `recorded` (horizon → strategy → {"dates",
    "signals"}, what the backtest wrote to backtest.json) supplies the signals of a fitted rule (jump_signal),
    whose accounting is then recomputed here."""
    price_dates = prices["date"].to_numpy()
    daily = prices["daily_return"].fill_null(0.0).to_numpy()
    cash = prices["cash_return"].to_numpy().astype(float) if "cash_return" in prices.columns else None
    above = prices["above_sma"].to_numpy().astype(float)
    vol = prices["trailing_std"].to_numpy().astype(float) * SQRT_SESSIONS_PER_YEAR
    exposure = np.where(np.isfinite(vol) & (vol > 0), np.minimum(1.0, TARGET_VOLATILITY / np.where(vol > 0, vol, 1.0)), 0.0)
    rows = []
    for (horizon,), group in signals.group_by(["horizon"], maintain_order=True):
        per_model = {m: g for (m,), g in group.group_by(["model"], maintain_order=True)}
        common = np.array(sorted(set.intersection(*(set(g["as_of"].to_list()) for g in per_model.values()))),
                          dtype="datetime64[D]")
        strategies = {}
        for model, g in per_model.items():
            g = g.filter(pl.col("as_of").is_in(common.astype(object).tolist())).sort("as_of")
            strategies[model] = g["long"].to_numpy().astype(float)
        strategies["buy_and_hold"] = np.ones(len(common))
        strategies["sma_200"] = above[np.searchsorted(price_dates, common)]
        strategies["vol_target"] = exposure[np.searchsorted(price_dates, common)]
        for name, record in (recorded or {}).get(int(horizon), {}).items():
            by_date = dict(zip(np.array(record["dates"], dtype="datetime64[D]").tolist(), record["signals"]))
            strategies[name] = np.array([by_date[d] for d in common.astype(object).tolist()], dtype=float)
        for name, s in strategies.items():
            for measure, value in strategy_measures(price_dates, daily, common, s, cost_bp, cash).items():
                rows.append({"strategy": name, "horizon": int(horizon), "measure": measure, "value": value})
    return pl.DataFrame(rows, schema={"strategy": pl.Utf8, "horizon": pl.Int64, "measure": pl.Utf8, "value": pl.Float64})


def _differs(a, b) -> bool:
    if a is None or b is None or (isinstance(a, float) and np.isnan(a)) or (isinstance(b, float) and np.isnan(b)):
        return not ((a is None or np.isnan(a)) and (b is None or np.isnan(b)))
    return abs(a - b) > TOLERANCE * max(1.0, abs(a), abs(b))


def compare(stored_metrics: pl.DataFrame, recomputed_metrics: pl.DataFrame, stored_backtest: pl.DataFrame,
            recomputed_backtest: pl.DataFrame) -> list[str]:
    """One sentence per stored value that a recomputation contradicts (or that is missing)."""
    problems = []
    stored = {(r["model"], int(r["horizon"]), r["metric"]): r["value"]
              for r in stored_metrics.filter(pl.col("fold").is_null()).iter_rows(named=True)}
    for r in recomputed_metrics.iter_rows(named=True):
        key = (r["model"], r["horizon"], r["metric"])
        if key not in stored:
            problems.append(f"market.model_metrics has no pooled {r['metric']} for {r['model']} (h={r['horizon']}).")
        elif _differs(stored[key], r["value"]):
            problems.append(f"market.model_metrics {r['metric']} of {r['model']} (h={r['horizon']}) is {stored[key]!r}, "
                            f"the recomputation from market.oos_predictions gives {r['value']!r}.")
    bt = {(r["strategy"], int(r["horizon"])): r for r in stored_backtest.iter_rows(named=True)}
    for r in recomputed_backtest.iter_rows(named=True):
        row = bt.get((r["strategy"], r["horizon"]))
        if row is None:
            problems.append(f"market.backtest has no row for {r['strategy']} (h={r['horizon']}).")
            continue
        value = row[r["measure"]]
        if _differs(None if value is None else float(value), r["value"]):
            problems.append(f"market.backtest {r['measure']} of {r['strategy']} (h={r['horizon']}) is {value!r}, "
                            f"the recomputation from prices and forecasts gives {r['value']!r}.")
    return problems
