"""Platform benchmark: what `regime-platform run` and the daily schedule cost, each beside Dagster's own floor.

    python benchmarks/bench_platform.py                  # histories of 5 and 19 years (`make bench`)
    python benchmarks/bench_platform.py --spans 5 --repeats 2
    python benchmarks/bench_platform.py --cold-run       # also a default `regime-platform run` (about 12 minutes)

For each history span (years before the bundled sample's last session, 2018-12-31), in a fresh subprocess with a
fresh data dir and a fresh SQLite Dagster instance (the storage `make run` records into), offline on the sample,
one ticker (SPY):
- every step of `regime-platform run` (cli.run_steps, the same Dagster commands) timed, the models reduced
  (REGIME_EPOCHS=2, REGIME_MAX_FOLDS=1, REGIME_INNER_VALIDATION=0: the training has its own benchmark);
- **orchestration**: the history's ohlcv + macro + features runs against (a) the same partitions materialized by
  do-nothing assets in the same instance (benchmarks/floor_definitions.py) and (b) the same domain functions in a
  plain script (no Dagster) on a data dir of its own;
- **the daily increment**: the last session through `daily_forecast_job` as the schedule launches it, --repeats
  times, against a do-nothing job of as many steps; where its time goes (steps from the run's event log, the rest
  process start and definitions load); once more with the definitions' default executor (what a run launched from
  the UI gets) instead of the explicit in-process config `make run` passes;
- **footprint**: `.dagster/` and the warehouse after the history and after the whole run, and growth per daily run.

Writes benchmarks/results/platform.json; `benchmarks/report.py` turns it into RESULTS.md's figures.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "platform.json"
FLOOR = ("-f", str(Path(__file__).parent / "floor_definitions.py"))
LAST = dt.date(2018, 12, 31)  # the bundled sample's last session
REDUCED_MODELS = {"REGIME_EPOCHS": "2", "REGIME_MAX_FOLDS": "1", "REGIME_INNER_VALIDATION": "0"}


def say(message: str) -> None:
    print(f"[bench_platform] {message}", file=sys.stderr, flush=True)


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def peak_rss_children_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB


def timed(fn, log_file) -> float:
    began = time.perf_counter()
    with contextlib.redirect_stdout(log_file):
        fn()
    return time.perf_counter() - began


def run_anatomy(instance, job: str) -> dict:
    """The newest run of ``job``: its duration from the run's own events and each step's, in seconds."""
    import dagster as dg

    record = instance.get_run_records(dg.RunsFilter(job_name=job), limit=1)[0]
    events = instance.all_logs(record.dagster_run.run_id)
    stamps = {e.dagster_event.event_type_value: e.timestamp for e in events if e.dagster_event
              and e.dagster_event.event_type_value in ("PIPELINE_START", "PIPELINE_SUCCESS", "PIPELINE_FAILURE")}
    starts, steps = {}, {}
    for e in events:
        kind = e.dagster_event.event_type_value if e.dagster_event else None
        if kind == "STEP_START":
            starts[e.step_key] = e.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and e.step_key in starts:
            steps[e.step_key] = round(e.timestamp - starts[e.step_key], 2)
    end = stamps.get("PIPELINE_SUCCESS", stamps.get("PIPELINE_FAILURE"))
    return {"run_seconds": round(end - stamps["PIPELINE_START"], 2) if end else None, "steps": steps}


def plain_script(first: dt.date, last: dt.date, tickers: list[str], data_dir: Path) -> dict:
    """The history's domain work without Dagster: the ohlcv asset's ingestion, the macro rules, the features."""
    os.environ["REGIME_DATA_DIR"] = str(data_dir)
    from regime_platform import calendar
    from regime_platform import storage as wh
    from regime_platform.defs.ingestion.assets import ingest_bars
    from regime_platform.defs.resources import default_resources
    from regime_platform.features.compute import LOOKBACK_SESSIONS, features_for_range
    from regime_platform.ingestion import macro as rules
    from regime_platform.ingestion import macro_sources

    res = default_resources()
    warehouse, settings = res["warehouse"], res["settings"]
    s = settings.settings()
    log = logging.getLogger("plain_script")
    log.addHandler(logging.NullHandler())  # the runs above said the same warnings; a script would not log them
    log.propagate = False
    seconds = {}
    began = time.perf_counter()
    ingest_bars(log, warehouse, settings, tickers, first, last)
    seconds["ohlcv"] = time.perf_counter() - began
    began = time.perf_counter()
    fetch_start = first - dt.timedelta(days=rules.REFETCH_DAYS)
    answers = macro_sources.fetch_series(list(s.macro_series), fetch_start, last, "sample")
    built = {n: rules.build_rows(a, s.macro_lag, dt.datetime.now()).rows for n, a in answers.items()
             if not isinstance(a, macro_sources.MacroSourceError)}
    with warehouse.connect() as con:
        wh.write_macro(con, fetch_start, last, built)
    seconds["macro"] = time.perf_counter() - began
    began = time.perf_counter()
    n = len(calendar.sessions(first, last))
    computed = {}
    for ticker in tickers:
        with warehouse.connect() as con:
            prices = wh.read_price_lookback(con, ticker, last, LOOKBACK_SESSIONS + n)
        computed[ticker] = features_for_range(prices, first, last)
    with warehouse.connect() as con:
        wh.write_features(con, first, last, computed)
    seconds["features"] = time.perf_counter() - began
    return {k: round(v, 2) for k, v in seconds.items()}


def worker(years: int, repeats: int, work: Path) -> dict:
    """One history span, in this (fresh) process: the environment says where the instance and the data dir are."""
    import dagster as dg

    from regime_platform import calendar, cli
    from regime_platform.runs import execute_job, run_config
    from regime_platform.settings import Settings

    home, data = Path(os.environ["DAGSTER_HOME"]), Path(os.environ["REGIME_DATA_DIR"])
    log_file = open(work / "runs.log", "a")  # noqa: SIM115 - closed at exit; every run's output, for a post-mortem
    settings = Settings.from_env()
    with contextlib.redirect_stdout(log_file):
        plan = cli.plan_range(settings)
        cli.register_tickers(plan.tickers)
    sessions = len(calendar.sessions(plan.first, plan.last))
    day, span = plan.last.isoformat(), (plan.first.isoformat(), plan.last.isoformat())
    out = {"years": years, "first": span[0], "last": day, "sessions": sessions, "steps": [],
           "load_average": round(os.getloadavg()[0], 1)}  # the machine is shared: what else ran shows here
    for step in cli.run_steps(plan):
        seconds = timed(lambda step=step: step.run([]), log_file)
        out["steps"].append({"label": step.label, "target": step.target, "seconds": round(seconds, 2),
                             "dagster_home_bytes": tree_bytes(home)})
        say(f"{years} y: {step.label}: {seconds:.1f} s")
        if step.target == "history_features_checks_job":
            out["after_history"] = {"dagster_home_bytes": tree_bytes(home), "warehouse_bytes": tree_bytes(data)}
    out["after_run"] = {"dagster_home_bytes": tree_bytes(home), "warehouse_bytes": tree_bytes(data)}
    out["history_seconds"] = round(sum(s["seconds"] for s in out["steps"] if s["target"].endswith("_assets_job")), 2)

    with contextlib.redirect_stdout(log_file):
        from regime_platform.definitions import defs
    daily_steps = len(defs().resolve_job_def("daily_forecast_job").graph.nodes)
    os.environ["FLOOR_DAILY_STEPS"] = str(daily_steps)
    daily, floor_daily, growth = [], [], []
    with dg.DagsterInstance.get() as instance:
        for _ in range(repeats):
            before = tree_bytes(home)
            daily.append(round(timed(lambda: execute_job("daily_forecast_job", (day, day)), log_file), 2))
            growth.append(tree_bytes(home) - before)
        anatomy = run_anatomy(instance, "daily_forecast_job")
        default_executor = round(timed(lambda: execute_job("daily_forecast_job", (day, day), "{}"), log_file), 2)
        for _ in range(repeats):
            floor_daily.append(round(timed(lambda: execute_job("floor_daily_job", (day, day), "{}", location=FLOOR),
                                           log_file), 2))
        floor_anatomy = run_anatomy(instance, "floor_daily_job")
        floor_history = {}
        for job in ("floor_ingestion_job", "floor_features_job"):
            floor_history[job] = round(timed(lambda job=job: execute_job(job, span, "{}", location=FLOOR), log_file), 2)
    say(f"{years} y: daily {daily} s, floor {floor_daily} s; history {out['history_seconds']} s, floor {floor_history}")
    out["daily"] = {"steps": daily_steps, "seconds": daily, "floor_seconds": floor_daily, "anatomy": anatomy,
                    "floor_anatomy": floor_anatomy, "default_executor_seconds": default_executor,
                    "dagster_home_growth_bytes": growth}
    out["floor_history_seconds"] = floor_history
    with contextlib.redirect_stdout(log_file):
        out["script_seconds"] = plain_script(plan.first, plan.last, plan.tickers, work / "script_data")
    say(f"{years} y: the same domain functions in a plain script: {out['script_seconds']} s")
    out["run_config_in_process"] = json.loads(run_config())
    out["peak_rss_mib"] = round(peak_rss_children_mib(), 1)
    return out


STEP_DONE = re.compile(r'STEP_SUCCESS - Finished execution of step "([^"]+)" in ((?:[0-9.]+[hms]+)+)')


def duration_seconds(text: str) -> float:
    """Dagster's step duration as it logs it (``729ms``, ``41.45s``, ``3m41s``, ``1h2m``) in seconds."""
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    seconds = 0.0
    for value, unit in re.findall(r"([0-9.]+)([hms])", text):
        seconds += float(value) * {"h": 3600, "m": 60, "s": 1}[unit]
    return seconds


def step_seconds(log_text: str) -> dict[str, float]:
    """Each step's duration from a run's log (its STEP_SUCCESS lines), summed over runs that repeat a step."""
    steps: dict[str, float] = {}
    for step, took in STEP_DONE.findall(log_text):
        steps[step] = round(steps.get(step, 0.0) + duration_seconds(took), 2)
    return steps


def cold_worker(work: Path) -> dict:
    """A default `regime-platform run` (what `make run` does after set-up), timed, with its peak RSS and each step's
    seconds (where the time goes)."""
    began = time.perf_counter()
    with open(work / "cold_run.log", "w") as log:
        proc = subprocess.run([str(Path(sys.executable).parent / "regime-platform"), "run"], stdout=log,
                              stderr=subprocess.STDOUT, cwd=ROOT)
    return {"seconds": round(time.perf_counter() - began, 1), "exit": proc.returncode,
            "steps": step_seconds((work / "cold_run.log").read_text(errors="replace")),
            "peak_rss_mib": round(peak_rss_children_mib(), 1),
            "dagster_home_bytes": tree_bytes(Path(os.environ["DAGSTER_HOME"])),
            "warehouse_bytes": tree_bytes(Path(os.environ["REGIME_DATA_DIR"]))}


def in_fresh_process(args: list[str], env_extra: dict[str, str], work: Path) -> dict:
    home = work / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml.template", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "REGIME_DATA_DIR": str(work / "data"), "REGIME_SOURCE": "sample",
           "REGIME_TICKERS": "SPY", "PYTHONWARNINGS": "ignore", **env_extra}
    out = work / "result.json"
    proc = subprocess.run([sys.executable, __file__, *args, "--work", str(work), "--result", str(out)], env=env,
                          cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"the benchmark's worker {args} failed (exit {proc.returncode}); its runs' output is in "
                         f"{work}/runs.log.")
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", default="5,19", help="history spans in years before 2018-12-31 (default 5,19)")
    ap.add_argument("--repeats", type=int, default=3, help="daily increments timed per span (default 3)")
    ap.add_argument("--cold-run", action="store_true", help="also a default `regime-platform run` (~12 min)")
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument("--keep", action="store_true", help="keep the instances and data dirs (their path is printed)")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--cold-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker or args.cold_worker:
        result = cold_worker(args.work) if args.cold_worker else worker(args.worker, args.repeats, args.work)
        args.result.write_text(json.dumps(result, indent=1))
        return 0

    from regime_platform import calendar

    payload = {"benchmark": "platform", "run_at": dt.datetime.now().isoformat(timespec="seconds"),
               "reduced_models": REDUCED_MODELS, "spans": [], "cold_run": None}
    tmp = tempfile.mkdtemp(prefix="bench-platform-")  # kept when a worker fails: its runs.log says why
    for years in [int(y) for y in args.spans.split(",") if y.strip()]:
        start = calendar.sessions(dt.date(LAST.year - years + 1, 1, 1), dt.date(LAST.year - years + 1, 1, 15))[0]
        say(f"history of {years} years from {start}: a fresh instance and data dir")
        payload["spans"].append(in_fresh_process(
            ["--worker", str(years), "--repeats", str(args.repeats)],
            {"REGIME_START": start.isoformat(), **REDUCED_MODELS}, Path(tmp) / f"span_{years}"))
    if args.cold_run:
        say("a default `regime-platform run` on the sample, fresh instance and data dir")
        payload["cold_run"] = in_fresh_process(["--cold-worker"], {"REGIME_SOURCE": "auto"}, Path(tmp) / "cold")
    if args.keep:
        say(f"kept: {tmp}")
    else:
        shutil.rmtree(tmp)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=1))
    say(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
