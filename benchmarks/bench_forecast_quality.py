"""Forecast-quality benchmark (issue 20): every decision-rule and capacity candidate against buy-and-hold,
the 200-day rule and persistence, on the economic backtest (DESIGN §2) and the classification metrics.

    python benchmarks/bench_forecast_quality.py            # both settings, ~5–10 min on 2 cores
    python benchmarks/bench_forecast_quality.py --only jump

Data: the bundled sample (S&P 500 index, 2000-01-03 … 2018-12-31, offline), the platform's 18 scale-free
features, labels refit inside every fold — the `jump` labeler at h = 5 and the `drawdown` labeler at h = 21 —
and the default walk-forward (test years 2007–2018). Models: logistic, random_forest and ensemble (their mean;
the sequence models are left out to keep the runtime short) and the baselines.

Candidates per model: `argmax` (the old default), `dwell k` for k = 3, 5, 10 (the decision rule applied to the
same out-of-sample probabilities, exactly what REGIME_MIN_DWELL=k produces, since the rule does not touch the
fit), and `inner` (REGIME_INNER_VALIDATION=1 with REGIME_MIN_DWELL=0: capacity and dwell chosen per fold on
the training span's embargoed tail by macro-F1) and `inner sharpe` (the same, scored by the tail's Sharpe:
REGIME_INNER_SCORE=sharpe). The risk-off regime of each fold is the one with the lowest mean daily
return in its training span (as the evaluation assets do). Writes benchmarks/results/forecast_quality.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from regime_platform.artifacts import write_json_atomic
from regime_platform.backtest import backtest_horizon
from regime_platform.decision import apply_min_dwell
from regime_platform.features import MODEL_FEATURES, compute_features
from regime_platform.fold_targets import RefitLabels
from regime_platform.labels import labelable, make_labeler
from regime_platform.metrics import classification_metrics
from regime_platform.sources import SampleSource
from regime_platform.training import TrainingConfig
from regime_platform.walk_forward import walk_forward

RESULTS = Path(__file__).parent / "results" / "forecast_quality.json"
MODELS = {"logistic": {}, "random_forest": {}, "ensemble": {}}
SETTINGS = {"jump": 5, "drawdown": 21}
DWELLS = (3, 5, 10)


def load_sample() -> pl.DataFrame:
    bars = SampleSource().fetch("SPY", dt.date(2000, 1, 3), dt.date(2018, 12, 31)).with_columns(ticker=pl.lit("SPY"))
    return compute_features(bars).join(bars.select("date", "adj_close"), on="date")


def redecide(oos: pl.DataFrame, model: str, k: int, name: str) -> pl.DataFrame:
    """One model's rows with the decision rule k applied per fold in time order (probabilities untouched)."""
    parts = []
    for fold in sorted(oos.filter(pl.col("model") == model)["fold"].unique().to_list()):
        rows = oos.filter((pl.col("model") == model) & (pl.col("fold") == fold)).sort("as_of")
        decided = apply_min_dwell(np.array(rows["probabilities"].to_list()), k)
        parts.append(rows.with_columns(predicted_regime=pl.Series(decided.tolist(), dtype=pl.Int32),
                                       model=pl.lit(name)))
    return pl.concat(parts)


def scores(oos: pl.DataFrame, k: int) -> dict[str, dict[str, float]]:
    out = {}
    for m in oos["model"].unique(maintain_order=True).to_list():
        sub = oos.filter((pl.col("model") == m) & pl.col("true_regime").is_not_null())
        known = sub["known_regime"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        met = classification_metrics(sub["true_regime"].to_numpy(), sub["predicted_regime"].to_numpy(),
                                     np.array(sub["probabilities"].to_list()), known, k)
        out[m] = {key: met[key] for key in ("macro_f1", "balanced_accuracy", "transition_recall", "accuracy")}
    return out


def run_setting(frame: pl.DataFrame, labeler: str, horizon: int, log) -> dict:
    names = list(MODEL_FEATURES)
    dates = frame["date"].to_list()
    X = frame.select(names).fill_null(np.nan).to_numpy().astype(np.float64)
    X[~np.isfinite(X)] = np.nan
    returns = frame["ret_1d"].fill_null(np.nan).to_numpy()
    targets = RefitLabels(labelable(frame, make_labeler(labeler)), lambda: make_labeler(labeler), name=labeler)
    base_cfg = TrainingConfig(horizon=horizon)
    t0 = time.perf_counter()
    plain = walk_forward(dates, X, names, targets, MODELS, base_cfg, returns=returns, log=log)
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    inner = walk_forward(dates, X, names, targets, MODELS, TrainingConfig(horizon=horizon, min_dwell=0,
                                                                           tune_capacity=True),
                         returns=returns, log=log)
    t_inner = time.perf_counter() - t0
    t0 = time.perf_counter()
    sharpe = walk_forward(dates, X, names, targets, MODELS, TrainingConfig(horizon=horizon, min_dwell=0,
                                                                           tune_capacity=True, inner_score="sharpe"),
                          returns=returns, log=log)
    t_sharpe = time.perf_counter() - t0
    risk_off = {r["fold"]: r["risk_off_regime"] for r in plain.fold_records}
    risk_off_inner = {r["fold"]: r["risk_off_regime"] for r in inner.fold_records}
    assert risk_off == risk_off_inner, "the two runs must share the folds' labels"
    oos = plain.oos_predictions
    frames = [oos.filter(pl.col("model").is_in(["persistence", "majority"]))]
    for m in MODELS:
        frames.append(oos.filter(pl.col("model") == m).with_columns(model=pl.lit(f"{m} argmax")))
        frames += [redecide(oos, m, k, f"{m} dwell {k}") for k in DWELLS]
        frames.append(inner.oos_predictions.filter(pl.col("model") == m).with_columns(model=pl.lit(f"{m} inner")))
        frames.append(sharpe.oos_predictions.filter(pl.col("model") == m).with_columns(
            model=pl.lit(f"{m} inner sharpe")))
    cands = pl.concat(frames, how="vertical_relaxed")
    k = len(cands["probabilities"][0])
    table, _ = backtest_horizon(cands, frame.select("date", "adj_close"), risk_off, horizon)
    cls = scores(cands, k)
    rows = []
    for r in table.iter_rows(named=True):
        rows.append({"strategy": r["strategy"], "sharpe": r["sharpe"], "max_drawdown": r["max_drawdown"],
                     "switches": r["switches"], "ann_return": r["ann_return"], "time_in_market": r["time_in_market"],
                     **cls.get(r["strategy"], {})})
    choices = [{"fold": rec["fold"], "test_year": rec["test_year"],
                **{m: {"params": rec["models"][m]["inner_validation"]["params"],
                       "min_dwell": rec["models"][m]["inner_validation"]["min_dwell"],
                       "tail_score": rec["models"][m]["inner_validation"]["score"]} for m in MODELS}}
               for rec in inner.fold_records]
    return {"labeler": labeler, "horizon": horizon, "test_years": [r["test_year"] for r in plain.fold_records],
            "start": str(table["start_date"][0]), "end": str(table["end_date"][0]),
            "seconds": {"argmax_run": round(t_plain, 1), "inner_run": round(t_inner, 1),
                        "inner_sharpe_run": round(t_sharpe, 1)},
            "table": rows, "inner_choices": choices}


def print_setting(res: dict) -> None:
    print(f"\n{res['labeler']} labeler, h = {res['horizon']}, {res['start']} … {res['end']} "
          f"(test years {res['test_years'][0]}–{res['test_years'][-1]})")
    print(f"{'strategy':<27}{'Sharpe':>7}{'maxDD':>8}{'switch':>7}{'macroF1':>8}{'balAcc':>7}{'transRec':>9}")
    for r in res["table"]:
        f = lambda key: f"{r[key]:.3f}" if r.get(key) is not None and np.isfinite(r[key]) else "–"  # noqa: E731
        sharpe = f"{r['sharpe']:.2f}" if r["sharpe"] is not None else "–"
        print(f"{r['strategy']:<27}{sharpe:>7}{r['max_drawdown'] * 100:>7.1f}%{r['switches']:>7}"
              f"{f('macro_f1'):>8}{f('balanced_accuracy'):>7}{f('transition_recall'):>9}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=list(SETTINGS), help="run one labeler setting")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    frame = load_sample()

    def log(msg: str) -> None:
        if "inner validation chose" in msg or msg.startswith("fold") and "train " in msg:
            print(msg, file=sys.stderr, flush=True)

    results = []
    for labeler, horizon in SETTINGS.items():
        if args.only and labeler != args.only:
            continue
        results.append(run_setting(frame, labeler, horizon, log))
        print_setting(results[-1])
    write_json_atomic(args.output, {"benchmark": "forecast quality: decision rule and inner validation",
                                    "run_at": dt.datetime.now().isoformat(timespec="seconds"),
                                    "models": list(MODELS), "dwells": list(DWELLS), "settings": results})
    print(f"\nwritten: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
