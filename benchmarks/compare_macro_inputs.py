"""Macro inputs on and off: the same models of two `regime-platform run`s, paired on the same resampled days.

    REGIME_MACRO=off  REGIME_DATA_DIR=/tmp/off make run      # two default runs, the same seed, one setting apart
    REGIME_MACRO=auto REGIME_DATA_DIR=/tmp/on  make run
    python benchmarks/compare_macro_inputs.py --off /tmp/off --on /tmp/on [--ticker SPY]

Reads both warehouses (read-only) and rebuilds the evaluation's backtest exactly as the `backtest` asset does — the
same prices, fold risk-off regimes, fold training spans, cost and stored cash rate — on the union of the two runs'
out-of-sample forecasts, every model of the macro run renamed `<model>+macro`. So every strategy is resampled on the
same days (stationary block bootstrap, intervals.py) and each model's difference with macro minus without has its
90 % interval; macro-F1 and balanced accuracy likewise on the target sessions both scored. The walk-forward folds, the
truth and the risk-off regimes must be the two runs' same (checked). Writes benchmarks/results/macro_inputs.json and
prints the table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from regime_platform import storage as wh
from regime_platform.evaluation import backtest as bt
from regime_platform.evaluation import cash, intervals
from regime_platform.evaluation.metrics import n_classes, scored_rows
from regime_platform.evaluation.paired import is_model
from regime_platform.modeling import fold_records
from regime_platform.settings import Settings
from regime_platform.storage.files import write_json_atomic

RESULTS = Path(__file__).parent / "results" / "macro_inputs.json"
SUFFIX = "+macro"


def load_run(data_dir: Path, ticker: str) -> dict:
    """One run's out-of-sample rows, prices, folds and cash rows (its only targets version)."""
    with wh.read_only(data_dir / "warehouse.duckdb", 30) as con:
        versions = wh.stored_versions(con, "oos_predictions", ticker)["targets_version"].unique().to_list()
        if len(versions) != 1:
            raise SystemExit(f"{data_dir} holds {len(versions)} targets versions of {ticker}; use a data dir of one run.")
        version = versions[0]
        return {"version": version, "oos": wh.walk_forward_predictions(con, ticker, version),
                "prices": wh.adj_close_history(con, ticker).sort("date"),
                "risk_off": wh.fold_risk_off_regimes(con, ticker, version),
                "spans": wh.fold_training_spans(con, ticker, version),
                "cash": wh.read_macro(con, list(cash.CASH_SERIES)),
                "features": fold_features(con, ticker, version)}


def fold_features(con, ticker: str, version: str, model: str = "random_forest") -> list[str]:
    """The input features of ``model``'s folds, from its stored fold records (the union over folds)."""
    records, _ = fold_records.records_from_rows(wh.read_fold_records(con, ticker, version, model))
    return sorted({f for r in records for f in r.get("features") or []})


def same(off: dict, on: dict) -> None:
    """The comparison holds only if the two runs differ by their inputs alone."""
    if not off["prices"].equals(on["prices"]):
        raise SystemExit("the two runs stored different prices: run both on the same source and REGIME_START.")
    if off["risk_off"] != on["risk_off"] or off["spans"] != on["spans"]:
        raise SystemExit("the two runs have different folds or risk-off regimes: run both with the same settings but "
                         "REGIME_MACRO.")
    key = ["horizon", "as_of"]
    truth_off = scored_rows(off["oos"]).select(*key, "true_regime").unique()
    truth_on = scored_rows(on["oos"]).select(*key, "true_regime").unique()
    joined = truth_off.join(truth_on, on=key, suffix="_on")
    if joined.height == 0 or (joined["true_regime"] != joined["true_regime_on"]).any():
        raise SystemExit("the two runs scored against different truths: run both with the same labeler and settling.")


def compare(off: dict, on: dict, seed: int, cost_bp: float) -> dict:
    models = sorted(m for m in off["oos"]["model"].unique().to_list() if is_model(m))
    renamed = on["oos"].filter(pl.col("model").is_in(models)).with_columns(pl.col("model") + SUFFIX)
    union = pl.concat([off["oos"], renamed.select(off["oos"].columns)])
    prices = off["prices"]
    backtests = bt.backtest_all(union, prices, off["risk_off"], cost_bp, off["spans"], seed,
                                cash.cash_returns(off["cash"], prices["date"].to_list()))
    out = {}
    for h, b in backtests.items():
        sample = {r["strategy"]: r for r in b.table.iter_rows(named=True)}
        scored = scored_rows(union).filter(pl.col("horizon") == h)
        k = n_classes(scored)
        per = {m: scored.filter(pl.col("model") == m).unique("as_of", keep="last") for m in
               [*models, *(m + SUFFIX for m in models)]}
        common = sorted(set.intersection(*(set(f["as_of"].to_list()) for f in per.values())))
        aligned = {m: f.filter(pl.col("as_of").is_in(common)).sort("as_of") for m, f in per.items()}
        truth = aligned[models[0]]["true_regime"].to_numpy()
        indices = intervals.cached_indices(len(common), seed)
        classes = {m: (intervals.classification_measures(intervals.confusion_stack(truth, f["predicted_regime"]
                                                                                    .to_numpy(), k)),
                       intervals.classification_measures(intervals.confusion_stack(truth, f["predicted_regime"]
                                                                                    .to_numpy(), k, indices)))
                   for m, f in aligned.items()}
        rows = []
        for m in models:
            row = {"model": m}
            for name, tag in ((m, "off"), (m + SUFFIX, "on")):
                s = sample[name]
                row[tag] = {"sharpe": s["sharpe"], "sharpe_90": [s["sharpe_lo"], s["sharpe_hi"]],
                            "max_drawdown": s["max_drawdown"], "max_drawdown_90": [s["max_drawdown_lo"],
                                                                                   s["max_drawdown_hi"]],
                            "switches": s["switches"],
                            **{c: float(classes[name][0][c][0]) for c in intervals.CLASSIFICATION_MEASURES},
                            **{f"{c}_90": list(intervals.interval(classes[name][1][c]))
                               for c in intervals.CLASSIFICATION_MEASURES}}
            diff = {}
            for measure in ("sharpe", "max_drawdown"):
                d = intervals.paired_difference(sample[m + SUFFIX][measure], sample[m][measure],
                                                b.resampled[m + SUFFIX][measure], b.resampled[m][measure])
                diff[measure] = [d.difference, d.ci_low, d.ci_high]
            for c in intervals.CLASSIFICATION_MEASURES:
                d = intervals.paired_difference(float(classes[m + SUFFIX][0][c][0]), float(classes[m][0][c][0]),
                                                classes[m + SUFFIX][1][c], classes[m][1][c])
                diff[c] = [d.difference, d.ci_low, d.ci_high]
            row["on_minus_off"] = diff
            rows.append(row)
        dates = next(iter(b.runs.values())).dates
        out[str(h)] = {"backtest_dates": [str(dates[0]), str(dates[-1]), len(dates)],
                       "scored_sessions": len(common), "cash": b.cash_sentence, "models": rows,
                       "buy_and_hold": {"sharpe": sample[bt.BUY_AND_HOLD]["sharpe"],
                                        "sharpe_90": [sample[bt.BUY_AND_HOLD]["sharpe_lo"],
                                                      sample[bt.BUY_AND_HOLD]["sharpe_hi"]]}}
    return out


def verdict(d: list[float]) -> str:
    return "ahead" if d[1] > 0 else "behind" if d[2] < 0 else "not distinguishable"


def table(result: dict) -> str:
    added = [f for f in result["features_on"] if f not in result["features_off"]]
    lines = [f"macro features the models added (random_forest's fold records): {', '.join(added) or 'none'}"]
    for h, r in result["horizons"].items():
        lines.append(f"h = {h}: backtest {r['backtest_dates'][0]} … {r['backtest_dates'][1]} "
                     f"({r['backtest_dates'][2]} sessions), {r['scored_sessions']} scored; {r['cash']}")
        def cell(value: float, bounds: list[float], digits: int = 2, sign: str = "") -> str:
            return f"{value:{sign}.{digits}f} [{bounds[0]:{sign}.{digits}f}, {bounds[1]:{sign}.{digits}f}]"

        lines.append(f"{'model':<14} {'Sharpe off [90 %]':<20} {'Sharpe on [90 %]':<20} {'on − off [90 %]':<22} "
                     f"{'macro-F1 off [90 %]':<24} {'on [90 %]':<24} {'on − off [90 %]':<25} verdict (Sharpe; macro-F1)")
        for m in r["models"]:
            off, on, d = m["off"], m["on"], m["on_minus_off"]
            lines.append(f"{m['model']:<14} {cell(off['sharpe'], off['sharpe_90']):<20} "
                         f"{cell(on['sharpe'], on['sharpe_90']):<20} {cell(d['sharpe'][0], d['sharpe'][1:], 2, '+'):<22} "
                         f"{cell(off['macro_f1'], off['macro_f1_90'], 3):<24} {cell(on['macro_f1'], on['macro_f1_90'], 3):<24} "
                         f"{cell(d['macro_f1'][0], d['macro_f1'][1:], 3, '+'):<25} "
                         f"{verdict(d['sharpe'])}; {verdict(d['macro_f1'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--off", type=Path, required=True, help="REGIME_DATA_DIR of the run with REGIME_MACRO=off")
    parser.add_argument("--on", type=Path, required=True, help="REGIME_DATA_DIR of the run with REGIME_MACRO=auto")
    parser.add_argument("--ticker", default="SPY")
    parser.add_argument("--seed", type=int, default=Settings().seed,
                        help="REGIME_SEED of the two runs: the evaluation draws its resamples with it")
    parser.add_argument("--cost-bp", type=float, default=bt.DEFAULT_COST_BP)
    args = parser.parse_args(argv)
    off, on = load_run(args.off, args.ticker), load_run(args.on, args.ticker)
    same(off, on)
    result = {"ticker": args.ticker, "off_version": off["version"], "on_version": on["version"],
              "features_off": off["features"], "features_on": on["features"],
              "intervals": intervals.method_sentence(), "cost_bp": args.cost_bp,
              "horizons": compare(off, on, args.seed, args.cost_bp)}
    write_json_atomic(RESULTS, result)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
