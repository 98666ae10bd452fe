"""Forecast-quality candidates of issue 32, each against buy-and-hold, the 200-day rule, `vol_target`, `jump_signal` and
persistence, every figure with its 90 % interval and every difference paired on the same resampled days.

    python benchmarks/bench_forecast_candidates.py                      # both settings, ~25 min on 2 cores
    python benchmarks/bench_forecast_candidates.py --only drawdown --runs default,threshold
    python benchmarks/bench_forecast_candidates.py --output benchmarks/results/forecast_candidates_macro.json \\
        --runs "default,threshold,threshold sharpe,macro,macro threshold,macro threshold sharpe"
    python benchmarks/bench_forecast_candidates.py --jobs 2 --output benchmarks/results/forecast_candidates_macro_paired.json \\
        --runs "default,threshold,macro,macro threshold,drawdown:threshold sharpe,drawdown:macro threshold sharpe"

`--runs` takes `<labeler>:<run>` for a run in that setting only; `--jobs 2` runs the two settings side by side;
`--cache DIR` keeps every finished run there and reads it back, so a killed invocation resumes where it stopped (and
two `--only` invocations sharing DIR, then one over both, make the same file as `--jobs 2`).

Data: the bundled sample (S&P 500 index, 2000-01-03 … 2018-12-31, offline) with its features as the platform computes
them; labels refit inside every fold and settled as the platform settles them (DESIGN §3a) — the `drawdown` labeler at
h = 21 (settled 252 sessions) and the `jump` labeler at h = 5 (42); the default walk-forward (test years 2007–2018).
Models: gradient_boosting, random_forest and logistic (the tabular models: seconds a fold; the LSTM and CNN take
minutes a fold and a candidate grid of them did not fit the machine's budget) and the baselines; `--models
lstm,cnn,ensemble` measures a few runs of the others. The backtest and
the intervals are the evaluation assets' own code (`backtest_horizon`, `paired`): flat in each fold's risk-off
regime, 10 bp a switch, a flat position earning 0 % here (the README's default run adds the cash rate).

Runs — every choice inside each fold's training span (the embargoed tail), never by the test years:
  `default`          the platform's defaults (compact inputs, capacity and dwell chosen on the tail by macro-F1)
  `threshold`        + REGIME_RISK_OFF_THRESHOLD=tail (the risk-off threshold chosen on the tail by its own backtest)
  `threshold sharpe` + REGIME_INNER_SCORE=sharpe as well (capacity and dwell by the tail's Sharpe too)
  `return shape`     + the EW Sortino ratios at half-lives 10 and 21 as inputs
  `return shape threshold`  both
  `recency`          + REGIME_RECENCY_HALF_LIFE=tail (the training samples weighted by recency, the half-life — none,
                     252, 756 or 1260 sessions — chosen on the tail with capacity and dwell)
  `return shape recency`  the return-shape inputs and the recency half-life chosen on the tail
  `known regime`     + known_regime_input='on': the regime known at t (one-hot) and log(1 + sessions since it
                     last changed) as inputs, from each fold's own causal assignment (the fold's labeler, online)
  `macro known regime`  the macro inputs and the known regime
  `unweighted`       REGIME_CLASS_WEIGHTING=0 (the classes not weighted by inverse frequency)
  `known regime unweighted`  the known regime, classes not weighted
  `macro`            + the macro features REGIME_MACRO=auto adds: those of features.macro with a value at every
                     labelled session, from the market.macro rows the offline `macro` asset stores (the bundled
                     sample: Moody's Baa and Aaa yields, monthly, so `macro_credit_spread` and
                     `macro_credit_spread_chg_63`; the sample's VIX starts in 2014, the other series are online only).
                     Each session reads only values usable at its close (DESIGN §3a), through the platform's own
                     `model_inputs`; sampled sessions are recomputed from the rows usable then and on the ledger's
                     short tail of sessions, and must agree (asserted)
  `macro threshold`  + REGIME_RISK_OFF_THRESHOLD=tail as well
  `macro threshold sharpe`  + REGIME_INNER_SCORE=sharpe as well
  `anchor`           + REGIME_PERSISTENCE_ANCHOR=tail (each session's decision stays the regime known at t unless the
                     model's vote is another regime with probability at least the anchor — none, 0.6 … 0.95 — chosen
                     on the tail by macro-F1)
  `anchor sharpe`    + REGIME_INNER_SCORE=sharpe as well (capacity, dwell and anchor by the tail's Sharpe)
  `macro anchor`     the macro inputs and the anchor
  Each macro run is paired with the same run without macro (`default`, `threshold`, `threshold sharpe`) when that ran,
  `anchor` with `default` and `macro anchor` with `macro`:
  `known regime` with `default`, `macro known regime` with `macro`, `known regime unweighted` with `unweighted`
  and `unweighted` with `default`:
  `versus` holds "<metric> vs without macro" / "… vs without anchor" / "… vs without known regime" / "… vs with
  class weights" (Sharpe, max drawdown, macro-F1, balanced
  accuracy) on the same resampled
  days.
Writes benchmarks/results/forecast_candidates.json (or --output) and prints the table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
from bench_forecast_quality import MemoTargets, load_sample

from regime_platform.evaluation import intervals, paired
from regime_platform.evaluation.backtest import backtest_horizon
from regime_platform.evaluation.metrics import n_classes, scored_rows
from regime_platform.features import macro as macro_inputs
from regime_platform.features.compute import COMPACT_FEATURES
from regime_platform.ingestion import macro as macro_rules
from regime_platform.ingestion import macro_sources
from regime_platform.labels import labelable, make_labeler
from regime_platform.modeling.targets import RefitLabels
from regime_platform.modeling.training import TrainingConfig
from regime_platform.modeling.walk_forward import walk_forward
from regime_platform.models import MODELS as MODEL_REGISTRY
from regime_platform.settings import SETTLE_SESSIONS, Settings
from regime_platform.storage.files import write_json_atomic

RESULTS = Path(__file__).parent / "results" / "forecast_candidates.json"
MODELS = ("gradient_boosting", "random_forest", "logistic")
SETTINGS = {"drawdown": 21, "jump": 5}
SHAPE = ["sortino_hl10", "sortino_hl21"]
# REGIME_MACRO=auto: of these, the ones with a value at every labelled session are added (macro_inputs.model_inputs);
# offline that is what the bundled sample covers (the Baa − Aaa credit spread and its change; the VIX starts in 2014)
MACRO = list(macro_inputs.MACRO_FEATURES)
MACRO_NOTE = "auto: of the macro features listed, those that cover the labelled span (each setting's macro.added)"
DEFAULTS = {"tune_capacity": True, "min_dwell": 0}
RUNS = {
    "default": (COMPACT_FEATURES, {}),
    "threshold": (COMPACT_FEATURES, {"risk_off_threshold": "tail"}),
    "threshold sharpe": (COMPACT_FEATURES, {"risk_off_threshold": "tail", "inner_score": "sharpe"}),
    "return shape": (COMPACT_FEATURES + SHAPE, {}),
    "return shape threshold": (COMPACT_FEATURES + SHAPE, {"risk_off_threshold": "tail"}),
    "known regime": (COMPACT_FEATURES, {"known_regime_input": "on"}),
    "macro known regime": (COMPACT_FEATURES + MACRO, {"known_regime_input": "on"}),
    "unweighted": (COMPACT_FEATURES, {"class_weighting": False}),
    "known regime unweighted": (COMPACT_FEATURES, {"known_regime_input": "on", "class_weighting": False}),
    "recency": (COMPACT_FEATURES, {"recency_half_life": "tail"}),
    "return shape recency": (COMPACT_FEATURES + SHAPE, {"recency_half_life": "tail"}),
    "macro": (COMPACT_FEATURES + MACRO, {}),
    "macro threshold": (COMPACT_FEATURES + MACRO, {"risk_off_threshold": "tail"}),
    "macro threshold sharpe": (COMPACT_FEATURES + MACRO, {"risk_off_threshold": "tail", "inner_score": "sharpe"}),
    "anchor": (COMPACT_FEATURES, {"persistence_anchor": "tail"}),
    "anchor sharpe": (COMPACT_FEATURES, {"persistence_anchor": "tail", "inner_score": "sharpe"}),
    "macro anchor": (COMPACT_FEATURES + MACRO, {"persistence_anchor": "tail"}),
}
# a run against the same run without one change, when both ran: paired on the same resampled days, as
# "<metric> vs <without …>"
PAIRED_WITH = {"macro": ("default", "without macro"), "macro threshold": ("threshold", "without macro"),
               "macro threshold sharpe": ("threshold sharpe", "without macro"),
               "anchor": ("default", "without anchor"), "macro anchor": ("macro", "without anchor"),
               "known regime": ("default", "without known regime"),
               "macro known regime": ("macro", "without known regime"),
               "known regime unweighted": ("unweighted", "without known regime"),
               "unweighted": ("default", "with class weights")}
REFERENCES = ("buy_and_hold", "sma_200", "vol_target", "jump_signal", "persistence")


def macro_rows(first: dt.date, last: dt.date) -> tuple[pl.DataFrame, list[str]]:
    """The market.macro rows an offline backfill of first … last stores (the `macro` asset: the default
    REGIME_MACRO_SERIES from the bundled sample, re-read REFETCH_DAYS before the first session, the point-in-time and
    quality rules of ingestion.macro at the default REGIME_MACRO_LAG), and a sentence per series not stored."""
    s = Settings()
    answers = macro_sources.fetch_series(list(s.macro_series), first - dt.timedelta(days=macro_rules.REFETCH_DAYS),
                                         last, "sample")
    now, built, not_stored = dt.datetime.now(), [], []
    for name, answer in answers.items():
        if isinstance(answer, macro_sources.MacroSourceError):
            not_stored.append(f"{name}: {answer}")
            continue
        built.append(macro_rules.build_rows(answer, s.macro_lag, now).rows)
    return pl.concat(built), not_stored


def with_macro_inputs(frame: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
    """``frame`` with the macro features a fit with REGIME_MACRO=auto reads (`macro_inputs.model_inputs` on the
    stored rows: every session reads only values usable at its close, DESIGN §3a), verified on sampled sessions
    against a recomputation from the rows the rule makes usable by then (`causality_problems`) and against the
    ledger's computation on its short tail of sessions (`with_macro` over HISTORY_SESSIONS)."""
    lag = Settings().macro_lag
    rows, not_stored = macro_rows(frame["date"].min(), frame["date"].max())
    out, added, notes = macro_inputs.model_inputs(frame, rows, list(COMPACT_FEATURES))
    sessions = out["date"].to_list()
    complete = out.drop_nulls(subset=list(COMPACT_FEATURES))["date"].to_list()
    checked = complete[::max(1, len(complete) // 40)] + complete[-1:]
    problems = macro_inputs.causality_problems(rows, sessions, checked, lag)
    values = dict(zip(sessions, out.select(added).iter_rows()))
    for day in checked:  # the ledger computes a session's features from its tail of sessions alone
        i = sessions.index(day)
        tail = out.select("date").slice(max(0, i + 1 - macro_inputs.HISTORY_SESSIONS), min(i + 1, macro_inputs
                                                                                              .HISTORY_SESSIONS))
        ledger = macro_inputs.with_macro(tail, rows, added).row(-1)[1:]
        for name, a, b in zip(added, values[day], ledger):
            if (a is None) != (b is None) or (a is not None and abs(a - b) > macro_inputs.TOLERANCE * max(1.0, abs(a))):
                problems.append(f"{name} on {day}: the fit reads {a}, the ledger {b}")
    assert not problems, "\n".join(problems)
    sources = rows.group_by("series").agg(pl.col("source").first(), pl.col("date").min().cast(pl.String).alias("first"),
                                          pl.col("date").max().cast(pl.String).alias("last"), pl.len().alias("rows"))
    return out, {"added": added, "left_out": notes, "not_stored": not_stored, "macro_lag": lag,
                 "stored": sources.sort("series").to_dicts(),
                 "verified": f"{len(checked)} sessions {checked[0]} … {checked[-1]}: recomputed from the rows usable "
                             "then, and on the ledger's tail of sessions"}


def run_setting(frame: pl.DataFrame, labeler: str, horizon: int, runs: list[str], cache: Path | None = None,
                models: tuple[str, ...] = MODELS) -> dict:
    """One label setting's runs, backtest, intervals and SPA; with ``cache``, each finished run's out-of-sample rows
    and the fold fields read here are kept there and read back by a later call (to resume a killed invocation: the
    files are keyed by labeler and run alone, so empty the directory after changing anything else)."""
    macro = None
    if any(set(MACRO) & set(RUNS[r][0]) for r in runs):
        frame, macro = with_macro_inputs(frame)
        print(f"{labeler}: macro inputs {', '.join(macro['added']) or 'none'}", file=sys.stderr, flush=True)
    dates, returns = frame["date"].to_list(), frame["ret_1d"].fill_null(np.nan).to_numpy()
    targets = MemoTargets(RefitLabels(labelable(frame, make_labeler(labeler)), lambda: make_labeler(labeler),
                                      name=labeler, settle=SETTLE_SESSIONS[labeler]))
    frames, seconds, fold_records = [], {}, {}
    for run in runs:
        names, overrides = RUNS[run]
        names = [n for n in names if n not in MACRO or n in macro["added"]]  # REGIME_MACRO=auto keeps what covers
        X = frame.select(names).fill_null(np.nan).to_numpy().astype(np.float64)
        X[~np.isfinite(X)] = np.nan
        which = "" if tuple(models) == MODELS else "-" + "+".join(models)  # another model set is another run
        kept = None if cache is None else cache / f"{labeler}-{run.replace(' ', '_')}{which}"
        if kept is not None and kept.with_suffix(".json").exists():  # a finished run of a killed invocation
            oos, meta = pl.read_parquet(kept.with_suffix(".parquet")), json.loads(kept.with_suffix(".json").read_text())
            seconds[run] = meta["seconds"]
            fold_records[run] = [{**r, "train_start": dt.date.fromisoformat(r["train_start"]),
                                  "train_end": dt.date.fromisoformat(r["train_end"])} for r in meta["folds"]]
            print(f"{labeler}: run {run!r} read from {kept}", file=sys.stderr, flush=True)
        else:
            t0 = time.perf_counter()
            res = walk_forward(dates, X, list(names), targets, list(models),
                               TrainingConfig(horizon=horizon, **DEFAULTS, **overrides), returns=returns)
            seconds[run] = round(time.perf_counter() - t0, 1)
            print(f"{labeler}: run {run!r} done in {seconds[run]} s", file=sys.stderr, flush=True)
            fold_records[run], oos = res.fold_records, res.oos_predictions
            if kept is not None:
                kept.parent.mkdir(parents=True, exist_ok=True)
                oos.write_parquet(kept.with_suffix(".parquet"))
                write_json_atomic(kept.with_suffix(".json"), {"seconds": seconds[run], "folds": [
                    {"fold": r["fold"], "risk_off_regime": r["risk_off_regime"], "train_start": str(r["train_start"]),
                     "train_end": str(r["train_end"]), "models": {m: {k: r["models"][m].get(k) for k in (
                         "risk_off_threshold", "recency_half_life", "persistence_anchor")} for m in models}}
                    for r in res.fold_records]})
        if not frames:
            frames.append(oos.filter(pl.col("model").is_in(["persistence", "majority"])))
        frames.append(oos.filter(pl.col("model").is_in(list(models))).with_columns(model=pl.col("model") + f" {run}"))
    first = fold_records[runs[0]]
    risk_off = {r["fold"]: r["risk_off_regime"] for r in first}
    for recs in fold_records.values():
        assert {r["fold"]: r["risk_off_regime"] for r in recs} == risk_off, "runs must share fold labels"
    spans = {r["fold"]: (r["train_start"], r["train_end"]) for r in first}
    cands = pl.concat(frames, how="vertical_relaxed").with_columns(horizon=pl.lit(horizon, pl.Int32))
    bt = backtest_horizon(cands, frame.select("date", "adj_close"), risk_off, horizon, spans=spans)
    versus = {(r["model"], r["baseline"], r["metric"]): r for r in paired.economic_rows(bt)}
    versus |= {(r["model"], r["baseline"], r["metric"]): r for r in paired.classification_rows(cands, horizon)}
    classification, drawn = classification_with_intervals(cands, horizon)
    sample = {r["strategy"]: r for r in bt.table.iter_rows(named=True)}
    for run in (r for r in runs if PAIRED_WITH.get(r, ("",))[0] in runs):  # with the change minus without it
        without = PAIRED_WITH[run][1]
        for m in models:
            on, off = f"{m} {run}", f"{m} {PAIRED_WITH[run][0]}"
            for metric in ("sharpe", "max_drawdown"):
                d = intervals.paired_difference(sample[on][metric], sample[off][metric], bt.resampled[on][metric],
                                                bt.resampled[off][metric])
                versus[(on, without, metric)] = {"difference": d.difference, "ci_low": d.ci_low,
                                                 "ci_high": d.ci_high, "reference": off}
            for metric in intervals.CLASSIFICATION_MEASURES:
                d = intervals.paired_difference(classification[on][metric][0], classification[off][metric][0],
                                                drawn[on][metric], drawn[off][metric])
                versus[(on, without, metric)] = {"difference": d.difference, "ci_low": d.ci_low,
                                                 "ci_high": d.ci_high, "reference": off}
    rows = []
    for r in bt.table.iter_rows(named=True):
        s = r["strategy"]
        row = {k: r[k] for k in ("strategy", "sharpe", "sharpe_lo", "sharpe_hi", "max_drawdown", "max_drawdown_lo",
                                 "max_drawdown_hi", "switches", "ann_return")}
        for metric in intervals.CLASSIFICATION_MEASURES:
            value, lo, hi = classification.get(s, {}).get(metric, (None, None, None))
            row |= {metric: value, f"{metric}_lo": lo, f"{metric}_hi": hi}
        row["versus"] = {f"{metric} vs {b}": {k: versus[(s, b, metric)][k] for k in ("difference", "ci_low", "ci_high")}
                         for b in REFERENCES for metric in ("sharpe", "macro_f1") if (s, b, metric) in versus}
        row["versus"] |= {f"{metric} vs {without}": versus[(s, without, metric)]
                          for without in sorted({label for _, label in PAIRED_WITH.values()})
                          for metric in ("sharpe", "max_drawdown", *intervals.CLASSIFICATION_MEASURES)
                          if (s, without, metric) in versus}
        rows.append(row)
    # the best of many candidates is flattered by the choice among them: Hansen's SPA against each reference asks
    # whether any candidate beats it once that choice is accounted for
    net = {name: run.net_returns for name, run in bt.runs.items()}
    candidates = [n for n in net if paired.is_model(n)]
    selection = {}
    for ref in REFERENCES:
        test = intervals.superior_predictive_ability(ref, net, candidates)
        if test is not None:
            selection[ref] = {"pvalue": test.pvalue, "best": test.best, "candidates": test.candidates,
                              "sentence": test.sentence()}
    return {"labeler": labeler, "horizon": horizon, "runs": runs, "models": list(models), "seconds": seconds, "selection": selection,
            "macro": macro,
            "start": str(bt.signal_dates[0]), "end": str(bt.signal_dates[-1]), "notes": bt.notes,
            "candidates_behind_best": len(runs) * len(models), "table": rows,
            "thresholds_chosen": {run: [{"fold": rec["fold"], **{m: rec["models"][m].get("risk_off_threshold")
                                                                  for m in models}} for rec in recs]
                                  for run, recs in fold_records.items() if RUNS[run][1].get("risk_off_threshold")},
            "half_lives_chosen": {run: [{"fold": rec["fold"], **{m: rec["models"][m].get("recency_half_life")
                                                                  for m in models}} for rec in recs]
                                  for run, recs in fold_records.items() if RUNS[run][1].get("recency_half_life")},
            "anchors_chosen": {run: [{"fold": rec["fold"], **{m: rec["models"][m].get("persistence_anchor")
                                                               for m in models}} for rec in recs]
                               for run, recs in fold_records.items() if RUNS[run][1].get("persistence_anchor")}}


def classification_with_intervals(cands: pl.DataFrame, horizon: int) -> tuple[dict[str, dict[str, tuple]], dict]:
    """Each model's and baseline's macro-F1 and balanced accuracy with their intervals, on the target sessions every
    one of them scored, resampled as `paired.classification_rows` resamples them; and the resampled values."""
    scored = scored_rows(cands).filter(pl.col("horizon") == horizon)
    per = {m: scored.filter(pl.col("model") == m).unique("as_of", keep="last")
           for m in scored["model"].unique().to_list()}
    common = sorted(set.intersection(*(set(f["as_of"].to_list()) for f in per.values())))
    aligned = {m: f.filter(pl.col("as_of").is_in(common)).sort("as_of") for m, f in per.items()}
    truth = next(iter(aligned.values()))["true_regime"].to_numpy()
    k, indices = n_classes(scored), intervals.cached_indices(len(common))
    out, draws = {}, {}
    for m, f in aligned.items():
        predicted = f["predicted_regime"].to_numpy()
        sample = intervals.classification_measures(intervals.confusion_stack(truth, predicted, k))
        draws[m] = intervals.classification_measures(intervals.confusion_stack(truth, predicted, k, indices))
        out[m] = {metric: (float(sample[metric][0]), *intervals.interval(draws[m][metric]))
                  for metric in intervals.CLASSIFICATION_MEASURES}
    return out, draws


def print_setting(res: dict) -> None:
    print(f"\n{res['labeler']} labeler, h = {res['horizon']}, {res['start']} … {res['end']}; "
          f"{res['candidates_behind_best']} candidates")
    for r in res["table"]:
        f = lambda v, fmt: fmt.format(v) if v is not None else "–"  # noqa: E731
        line = (f"{r['strategy']:<40}{f(r['sharpe'], '{:.2f}'):>6} [{f(r['sharpe_lo'], '{:.2f}')}, "
                f"{f(r['sharpe_hi'], '{:.2f}')}]{r['max_drawdown'] * 100:>8.1f}%{r['switches']:>5}"
                f"{f(r['macro_f1'], '{:.3f}'):>7} [{f(r['macro_f1_lo'], '{:.3f}')}, {f(r['macro_f1_hi'], '{:.3f}')}]"
                f"{f(r['balanced_accuracy'], '{:.3f}'):>7}")
        paired_tags = [(f"{m} vs {label}", f"{m}−{label.replace('without ', 'no').replace(' ', '')}")
                       for label in dict.fromkeys(label for _, label in PAIRED_WITH.values())
                       for m in ("sharpe", "macro_f1")]
        for key, tag in (("sharpe vs persistence", "sharpe−pers"), ("macro_f1 vs persistence", "macro_f1−pers"),
                         *paired_tags):
            d = r["versus"].get(key)
            if d:
                line += f"  {tag} {d['difference']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
        print(line)
    if res.get("macro"):
        print(f"macro inputs: {', '.join(res['macro']['added']) or 'none'}; " + " ".join(res["macro"]["left_out"]))
    for ref, test in res["selection"].items():
        print(f"against {ref}: {test['sentence']}")
    for kind, chosen in (("half-lives", res.get("half_lives_chosen", {})), ("anchors", res.get("anchors_chosen", {}))):
        print_choices(kind, chosen, res.get("models", MODELS))


def print_choices(kind: str, chosen: dict, models) -> None:
    """How often each value was chosen, per run and model, over the folds."""
    for run, folds in chosen.items():
        for m in models:
            counts: dict[str, int] = {}
            for rec in folds:
                key = "none" if rec[m] is None else f"{rec[m]:g}"
                counts[key] = counts.get(key, 0) + 1
            print(f"{kind} chosen, {run}, {m}: " + ", ".join(f"{k} ×{v}" for k, v in counts.items()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=list(SETTINGS))
    ap.add_argument("--runs", default=",".join(RUNS),
                    help="comma-separated runs; `<labeler>:<run>` makes a run in that setting only")
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument("--cache", type=Path, help="keep each finished run here and reuse it (resuming a killed run)")
    ap.add_argument("--jobs", type=int, default=1, help="settings run in parallel processes (at most one each)")
    ap.add_argument("--models", default=",".join(MODELS),
                    help="comma-separated models (default the tabular ones; lstm, cnn and ensemble take minutes a run)")
    args = ap.parse_args(argv)
    wanted = [tuple(item.rpartition(":")[::2]) for item in args.runs.split(",")]  # (setting or "", run)
    unknown = {run for _, run in wanted if run not in RUNS} | {f"{s}:" for s, _ in wanted if s and s not in SETTINGS}
    if unknown:
        ap.error(f"unknown run(s) or setting(s) {sorted(unknown)}; choose from {list(RUNS)} and {list(SETTINGS)}")
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    if unknown_models := sorted(set(models) - set(MODEL_REGISTRY)):
        ap.error(f"unknown model(s) {unknown_models}; choose from {sorted(MODEL_REGISTRY)}")
    frame = load_sample()
    jobs = []
    for labeler, horizon in SETTINGS.items():
        if args.only and labeler != args.only:
            continue
        runs = [r for r in RUNS if (("", r) in wanted or (labeler, r) in wanted)]
        jobs.append((frame, labeler, horizon, runs, args.cache, models))
    if args.jobs > 1:  # the settings side by side; spawned, as a forked polars thread pool can deadlock
        with ProcessPoolExecutor(min(args.jobs, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(run_setting, *zip(*jobs)))
    else:
        results = [run_setting(*job) for job in jobs]
    for res in results:
        print_setting(res)
    write_json_atomic(args.output, {"benchmark": "issue 32 forecast-quality candidates",
                                    "run_at": dt.datetime.now().isoformat(timespec="seconds"),
                                    "intervals": intervals.method_sentence(), "models": list(models),
                                    "runs": {r: {"features": n, **DEFAULTS, **o, **({"macro": MACRO_NOTE} if set(MACRO) & set(n)
                                                                                   else {})}
                                             for r, (n, o) in RUNS.items()},
                                    "settings": results})
    print(f"\nwritten: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
