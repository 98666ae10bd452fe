"""Training benchmark: the walk-forward on the bundled S&P 500 sample, timed per model per fold.

    python benchmarks/bench_training.py                 # every fold, default epochs
    python benchmarks/bench_training.py --folds 2 --epochs 5

Data: the bundled sample (S&P 500 index, 1999-01-04 … 2018-12-31, offline), the platform's own 18
scale-free features, and the default `jump` labeler refit inside every fold (``--labeler`` to change) —
the same path the modeling assets take, without Dagster's bookkeeping.

Writes ``benchmarks/results/training.json`` and prints a table (seconds, epochs, accuracy, macro-F1 per
model and fold, then pooled).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import accuracy_score, f1_score

from regime_platform.features.compute import MODEL_FEATURES, compute_features
from regime_platform.ingestion.sources import SampleSource
from regime_platform.labels import labelable, make_labeler
from regime_platform.modeling.targets import RefitLabels
from regime_platform.modeling.training import TrainingConfig
from regime_platform.modeling.walk_forward import walk_forward
from regime_platform.storage.files import write_json_atomic

RESULTS = Path(__file__).parent / "results" / "training.json"
MODELS = ["lstm", "cnn", "random_forest", "logistic"]


def load_sample() -> pl.DataFrame:
    """The bundled sample with the platform's own features (the 18 scale-free model columns)."""
    bars = SampleSource().fetch("SPY", dt.date(1999, 1, 4), dt.date(2018, 12, 31)).with_columns(ticker=pl.lit("SPY"))
    return compute_features(bars).join(bars.select("date", "adj_close"), on="date")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=None, help="keep the last N folds (default: all)")
    ap.add_argument("--epochs", type=int, default=30, help="max epochs for lstm/cnn (default 30)")
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--horizon", type=int, default=5)
    ap.add_argument("--window", type=int, default=30)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated (baselines always run)")
    ap.add_argument("--labeler", default="jump", help="generated labeler refit in every fold (default jump)")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    frame = load_sample()
    names = list(MODEL_FEATURES)
    dates = frame["date"].to_list()
    X = frame.select(names).fill_null(np.nan).to_numpy().astype(np.float64)
    X[~np.isfinite(X)] = np.nan
    labeler = args.labeler
    targets = RefitLabels(labelable(frame, make_labeler(labeler)), lambda: make_labeler(labeler), name=labeler)
    config = TrainingConfig(
        window=args.window, horizon=args.horizon, epochs=args.epochs, patience=args.patience, max_folds=args.folds
    )
    models = [m for m in args.models.split(",") if m]

    def log(msg: str) -> None:
        if "epoch" not in msg:
            print(msg, file=sys.stderr, flush=True)

    # torch imports torch._dynamo lazily on the first optimizer (≈1–15 s, once per process): pay it before
    # timing so the first fold's lstm/cnn seconds are comparable with the others
    import torch

    tw = time.perf_counter()
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    warmup = time.perf_counter() - tw

    t0 = time.perf_counter()
    res = walk_forward(dates, X, names, targets, models, config, log=log)
    wall = time.perf_counter() - t0

    oos = res.oos_predictions
    n_classes = len(oos["probabilities"][0])  # macro-F1 over every regime id, present in a fold or not
    rows = []
    for t in res.timings:
        sub = oos.filter((pl.col("model") == t["model"]) & (pl.col("fold") == t["fold"]))
        y, p = sub["true_regime"].to_numpy(), sub["predicted_regime"].to_numpy()
        rows.append({**t, "seconds": round(t["seconds"], 3), "accuracy": round(float(accuracy_score(y, p)), 4),
                     "macro_f1": round(float(f1_score(y, p, labels=list(range(n_classes)),
                                                               average="macro", zero_division=0)), 4)})
    pooled = []
    for m in oos["model"].unique(maintain_order=True):
        sub = oos.filter(pl.col("model") == m)
        y, p = sub["true_regime"].to_numpy(), sub["predicted_regime"].to_numpy()
        secs = [r["seconds"] for r in rows if r["model"] == m]
        pooled.append({"model": m, "folds": len(secs), "total_seconds": round(sum(secs), 2),
                       "mean_seconds_per_fold": round(sum(secs) / len(secs), 2),
                       "accuracy": round(float(accuracy_score(y, p)), 4),
                       "macro_f1": round(float(f1_score(y, p, labels=list(range(n_classes)), average="macro",
                                                         zero_division=0)), 4),
                       "n_predictions": int(sub.height)})

    payload = {
        "benchmark": "walk-forward training on arch sp500 sample (inline features, inline vol-quantile labeler)",
        "run_at": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "torch_threads": torch.get_num_threads()},  # what the LSTM and CNN fits set (torch_nets)
        "versions": _versions(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "config": config.to_dict(),
        "features": names,
        "sessions": len(dates),
        "folds": [{k: rec[k] for k in ("fold", "test_year", "train_start", "train_end", "test_start", "test_end",
                                       "n_train", "n_validation", "n_test", "embargo_sessions", "class_counts")}
                  for rec in res.fold_records],
        "single_split": res.single_split,
        "wall_seconds": round(wall, 2),
        "torch_first_use_seconds": round(warmup, 2),
        "per_fold": rows,
        "pooled": pooled,
    }
    write_json_atomic(args.output, payload)

    print(f"\nwalk-forward on {len(dates)} sessions, {len(res.fold_records)} folds "
          f"({', '.join(str(r['test_year']) for r in res.fold_records)}), epochs ≤ {args.epochs}, "
          f"{os.cpu_count()} CPUs, wall {wall:.1f} s")
    print(f"{'model':<14}{'fold':>5}{'year':>6}{'n_fit':>7}{'n_val':>6}{'n_test':>7}{'sec':>8}{'epochs':>7}{'acc':>7}{'macroF1':>8}")
    years = {r["fold"]: r["test_year"] for r in res.fold_records}
    for r in rows:
        print(f"{r['model']:<14}{r['fold']:>5}{years[r['fold']]!s:>6}{r['n_fit']:>7}{r['n_val']:>6}{r['n_test']:>7}"
              f"{r['seconds']:>8.2f}{(r['epochs'] or '-')!s:>7}{r['accuracy']:>7.3f}{r['macro_f1']:>8.3f}")
    print(f"\n{'pooled':<14}{'folds':>6}{'total s':>9}{'s/fold':>8}{'acc':>7}{'macroF1':>8}")
    for p in pooled:
        print(f"{p['model']:<14}{p['folds']:>6}{p['total_seconds']:>9.2f}{p['mean_seconds_per_fold']:>8.2f}"
              f"{p['accuracy']:>7.3f}{p['macro_f1']:>8.3f}")
    print(f"\nwritten: {args.output}")
    return 0


def _versions() -> dict[str, str]:
    import sklearn
    import torch

    return {"torch": torch.__version__, "scikit-learn": sklearn.__version__, "polars": pl.__version__,
            "numpy": np.__version__}


if __name__ == "__main__":
    raise SystemExit(main())
