"""Time one walk-forward of the default models and check that a change to the training code left its output unchanged.

    python benchmarks/compare_walk_forward.py --tune --save /tmp/after.json        # on the new commit
    git stash / git checkout <old>; python benchmarks/compare_walk_forward.py --tune --save /tmp/before.json
    python benchmarks/compare_walk_forward.py --diff /tmp/before.json /tmp/after.json

Data: the bundled sample with the platform's own features and the `jump` labeler refit in every fold
(`bench_training.load_sample`), h = 5, the last ``--folds`` folds, 30 epochs; ``--tune`` chooses capacity and dwell on
each span's tail as the platform's defaults do (REGIME_INNER_VALIDATION=1, REGIME_MIN_DWELL=0). Prints the seconds of
the whole walk-forward and of each model and fold; ``--save`` writes every out-of-sample row and fold record, and
``--diff`` says whether two saves are equal and, if not, which models, folds and record fields differ.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_training import load_sample  # noqa: E402

from regime_platform.features.compute import MODEL_FEATURES  # noqa: E402
from regime_platform.labels import labelable, make_labeler  # noqa: E402
from regime_platform.modeling.targets import RefitLabels  # noqa: E402
from regime_platform.modeling.training import TrainingConfig  # noqa: E402
from regime_platform.modeling.walk_forward import walk_forward  # noqa: E402
from regime_platform.storage.files import to_jsonable, write_json_atomic  # noqa: E402

MODELS = ["logistic", "random_forest", "gradient_boosting", "lstm", "cnn", "ensemble"]


def run(folds: int, tune: bool) -> dict:
    frame = load_sample()
    names = list(MODEL_FEATURES)
    X = frame.select(names).fill_null(np.nan).to_numpy().astype(np.float64)
    X[~np.isfinite(X)] = np.nan
    targets = RefitLabels(labelable(frame, make_labeler("jump")), lambda: make_labeler("jump"), name="jump")
    config = TrainingConfig(window=30, horizon=5, epochs=30, max_folds=folds,
                            **({"tune_capacity": True, "min_dwell": 0} if tune else {}))
    t0 = time.perf_counter()
    res = walk_forward(frame["date"].to_list(), X, names, targets, MODELS, config, returns=frame["ret_1d"].to_numpy())
    seconds = time.perf_counter() - t0
    print(f"walk-forward: {seconds:.1f} s")
    for t in res.timings:
        print(f"  {t['model']:<18} fold {t['fold']:>2}: {t['seconds']:.2f} s")
    return {"seconds": round(seconds, 2), "timings": to_jsonable(res.timings),
            "oos": to_jsonable(res.oos_predictions.to_dicts()), "records": res.fold_records_json()}


def diff(a: dict, b: dict) -> list[str]:
    """What differs between two saves: rows by (model, fold), then record fields by fold and model."""
    out = []
    if len(a["oos"]) != len(b["oos"]):
        out.append(f"{len(a['oos'])} rows against {len(b['oos'])}")
    rows = Counter((x["model"], x["fold"]) for x, y in zip(a["oos"], b["oos"]) if x != y)
    out += [f"{n} rows of {m} fold {f} differ" for (m, f), n in sorted(rows.items())]
    for ra, rb in zip(a["records"], b["records"]):
        for key in ra:
            if key == "models":
                for m in ra[key]:
                    out += [f"fold {ra['fold']} {m}: {k} differs" for k in ra[key][m]
                            if ra[key][m][k] != rb[key].get(m, {}).get(k)]
            elif ra[key] != rb.get(key):
                out.append(f"fold {ra['fold']}: record field {key} differs")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=2, help="the last N folds (default 2)")
    ap.add_argument("--tune", action="store_true", help="capacity and dwell chosen on each tail (the defaults)")
    ap.add_argument("--save", type=Path, help="write the rows and records here")
    ap.add_argument("--diff", type=Path, nargs=2, metavar=("A", "B"), help="compare two saves instead of running")
    args = ap.parse_args(argv)
    if args.diff:
        a, b = (json.loads(p.read_text()) for p in args.diff)
        problems = diff(a, b)
        print("\n".join(problems) if problems else f"equal: {len(a['oos'])} rows and {len(a['records'])} fold records "
              f"({a['seconds']} s against {b['seconds']} s)")
        return 1 if problems else 0
    result = run(args.folds, args.tune)
    if args.save:
        write_json_atomic(args.save, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
