"""Forecast-quality benchmark (issue 20): every input, capacity, calibration and decision-rule candidate against
buy-and-hold, the 200-day rule and persistence, on the economic backtest and the classification metrics.

    python benchmarks/bench_forecast_quality.py            # both settings, ~20-30 min on 2 cores
    python benchmarks/bench_forecast_quality.py --only jump
    python benchmarks/bench_forecast_quality.py --only drawdown --runs old,compact,default   # a subset of the runs

With --only, the other labeler's results already in the output file are kept.

Data: the bundled sample (S&P 500 index, 2000-01-03 … 2018-12-31, offline), labels refit inside every fold — the
`jump` labeler at h = 5 and the `drawdown` labeler at h = 21 — and the default walk-forward (test years
2007–2018). Models: lstm, cnn, random_forest, logistic, ensemble, and the baselines.

Runs (each a full walk-forward; every choice inside each fold's training span):
  `old`          the 18 scale-free features, no calibration, plain argmax, fixed capacity (the defaults before)
  `compact`      the compact 10 features with temperature calibration, plain argmax, fixed capacity
                 (REGIME_FEATURES=compact, REGIME_CALIBRATION=temperature, REGIME_INNER_VALIDATION=0, REGIME_MIN_DWELL=1)
  `default`      the platform's defaults: compact + calibration + REGIME_INNER_VALIDATION=1 and REGIME_MIN_DWELL=0
                 (capacity and dwell per fold on the training span's embargoed tail, by macro-F1)
  `inner sharpe` the defaults scored by the tail's Sharpe (REGIME_INNER_SCORE=sharpe)
  `selected`     `compact` but REGIME_FEATURES=scale_free with REGIME_FEATURE_SELECTION=1 (up to 8 chosen per fold)
and `dwell k` (k = 3, 5, 10): the `compact` run's probabilities with REGIME_MIN_DWELL=k applied (the rule does not
touch the fit, so this is exactly what that setting produces). The risk-off regime of each fold is the one with the
lowest mean daily return in its training span (as the evaluation assets do). Writes
benchmarks/results/forecast_quality.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from regime_platform.evaluation.backtest import backtest_horizon
from regime_platform.evaluation.metrics import classification_metrics
from regime_platform.features.compute import COMPACT_FEATURES, MODEL_FEATURES, compute_features
from regime_platform.ingestion.sources import SampleSource
from regime_platform.labels import labelable, make_labeler
from regime_platform.modeling.decision import apply_min_dwell
from regime_platform.modeling.targets import FoldLabels, RefitLabels
from regime_platform.modeling.training import TrainingConfig
from regime_platform.modeling.walk_forward import walk_forward
from regime_platform.storage.files import write_json_atomic

RESULTS = Path(__file__).parent / "results" / "forecast_quality.json"
MODELS = {"lstm": {}, "cnn": {}, "random_forest": {}, "logistic": {}, "ensemble": {}}
SETTINGS = {"jump": 5, "drawdown": 21}
DWELLS = (3, 5, 10)
RUNS = {
    "old": (MODEL_FEATURES, {"calibration": "none"}),
    "compact": (COMPACT_FEATURES, {}),
    "default": (COMPACT_FEATURES, {"tune_capacity": True, "min_dwell": 0}),
    "inner sharpe": (COMPACT_FEATURES, {"tune_capacity": True, "min_dwell": 0, "inner_score": "sharpe"}),
    "selected": (MODEL_FEATURES, {"feature_selection": True}),
}


class MemoTargets:
    """The same fold labels for every run: each fold's labeler is refit once, not once per run."""

    def __init__(self, targets: RefitLabels) -> None:
        self.targets, self.user_labels, self.cache = targets, targets.user_labels, {}

    def labelled_dates(self) -> list[dt.date]:
        return self.targets.labelled_dates()

    def fold_labels(self, train_target_end: dt.date, test_target_end: dt.date | None = None) -> FoldLabels:
        key = (train_target_end, test_target_end)
        if key not in self.cache:
            self.cache[key] = self.targets.fold_labels(train_target_end, test_target_end)
        return self.cache[key]


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


def run_setting(frame: pl.DataFrame, labeler: str, horizon: int, log, runs: list[str]) -> dict:
    dates = frame["date"].to_list()
    returns = frame["ret_1d"].fill_null(np.nan).to_numpy()
    targets = MemoTargets(RefitLabels(labelable(frame, make_labeler(labeler)), lambda: make_labeler(labeler),
                                      name=labeler))
    results, seconds = {}, {}
    for run in runs:
        names, overrides = RUNS[run]
        X = frame.select(names).fill_null(np.nan).to_numpy().astype(np.float64)
        X[~np.isfinite(X)] = np.nan
        t0 = time.perf_counter()
        results[run] = walk_forward(dates, X, list(names), targets, MODELS, TrainingConfig(horizon=horizon, **overrides),
                                    returns=returns, log=log)
        seconds[run] = round(time.perf_counter() - t0, 1)
        print(f"{labeler}: run {run!r} done in {seconds[run]} s", file=sys.stderr, flush=True)
    risk_off = {r["fold"]: r["risk_off_regime"] for r in results["compact"].fold_records}
    for res in results.values():
        assert {r["fold"]: r["risk_off_regime"] for r in res.fold_records} == risk_off, "runs must share fold labels"
    base = results["compact"].oos_predictions
    frames = [base.filter(pl.col("model").is_in(["persistence", "majority"]))]
    for m in MODELS:
        for run, res in results.items():
            frames.append(res.oos_predictions.filter(pl.col("model") == m).with_columns(model=pl.lit(f"{m} {run}")))
        frames += [redecide(base, m, k, f"{m} dwell {k}") for k in DWELLS]
    cands = pl.concat(frames, how="vertical_relaxed")
    k = len(cands["probabilities"][0])
    table, _ = backtest_horizon(cands, frame.select("date", "adj_close"), risk_off, horizon)
    cls = scores(cands, k)
    rows = []
    for r in table.iter_rows(named=True):
        rows.append({"strategy": r["strategy"], "sharpe": r["sharpe"], "max_drawdown": r["max_drawdown"],
                     "switches": r["switches"], "ann_return": r["ann_return"], "time_in_market": r["time_in_market"],
                     **cls.get(r["strategy"], {})})
    rows.sort(key=lambda r: -(r["sharpe"] if r["sharpe"] is not None else -9))

    def choices(res):
        return [{"fold": rec["fold"], "test_year": rec["test_year"],
                 "features": rec["features"],
                 **{m: {"params": (rec["models"][m]["inner_validation"] or {}).get("params"),
                        "min_dwell": rec["models"][m]["min_dwell"],
                        "tail_score": (rec["models"][m]["inner_validation"] or {}).get("score")} for m in MODELS}}
                for rec in res.fold_records]

    return {"labeler": labeler, "horizon": horizon, "runs": runs,
            "test_years": [r["test_year"] for r in base_records(results)],
            "start": str(table["start_date"][0]), "end": str(table["end_date"][0]), "seconds": seconds,
            "table": rows, "inner_choices": choices(results["default"]) if "default" in results else None,
            "selected_features": choices(results["selected"]) if "selected" in results else None}


def base_records(results: dict) -> list[dict]:
    return results["compact"].fold_records


def print_setting(res: dict) -> None:
    print(f"\n{res['labeler']} labeler, h = {res['horizon']}, {res['start']} … {res['end']} "
          f"(test years {res['test_years'][0]}–{res['test_years'][-1]})")
    print(f"{'strategy':<30}{'Sharpe':>7}{'maxDD':>8}{'switch':>7}{'macroF1':>8}{'balAcc':>7}{'transRec':>9}")
    for r in res["table"]:
        f = lambda key, r=r: f"{r[key]:.3f}" if r.get(key) is not None and np.isfinite(r[key]) else "–"  # noqa: E731
        sharpe = f"{r['sharpe']:.2f}" if r["sharpe"] is not None else "–"
        print(f"{r['strategy']:<30}{sharpe:>7}{r['max_drawdown'] * 100:>7.1f}%{r['switches']:>7}"
              f"{f('macro_f1'):>8}{f('balanced_accuracy'):>7}{f('transition_recall'):>9}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=list(SETTINGS), help="run one labeler setting")
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument("--runs", default=",".join(RUNS), help="comma-separated runs to measure (compact is always run: "
                                                           "the dwell candidates and the shared fold labels use it)")
    args = ap.parse_args(argv)
    runs = [r for r in RUNS if r in {"compact", *args.runs.split(",")}]
    unknown = set(args.runs.split(",")) - set(RUNS)
    if unknown:
        ap.error(f"unknown run(s) {sorted(unknown)}; choose from {list(RUNS)}")
    frame = load_sample()

    def log(msg: str) -> None:
        if msg.startswith("fold") and "train " in msg:
            print(msg, file=sys.stderr, flush=True)

    results = []
    for labeler, horizon in SETTINGS.items():
        if args.only and labeler != args.only:
            continue
        results.append(run_setting(frame, labeler, horizon, log, runs))
        print_setting(results[-1])
    if args.only and args.output.exists():  # keep the other labeler's results
        kept = [s for s in json.loads(args.output.read_text()).get("settings", []) if s["labeler"] != args.only]
        results = sorted(kept + results, key=lambda s: list(SETTINGS).index(s["labeler"]))
    write_json_atomic(args.output, {"benchmark": "forecast quality: inputs, capacity, calibration, decision rule",
                                    "runs": {run: {"features": names, **o} for run, (names, o) in RUNS.items()},
                                    "run_at": dt.datetime.now().isoformat(timespec="seconds"),
                                    "models": list(MODELS), "dwells": list(DWELLS), "settings": results})
    print(f"\nwritten: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
