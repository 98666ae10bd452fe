"""Many-tickers benchmark: N synthetic tickers × 20 years through the real Dagster assets, on one machine.

    python benchmarks/bench_tickers.py                          # sizes 10,50 (`make bench`: about 10 minutes)
    python benchmarks/bench_tickers.py --sizes 50,100,250,500 --labels-budget 360
                                                                # what benchmarks/RESULTS.md "500 tickers" records
    python benchmarks/bench_tickers.py --quick                  # 10 and 20 tickers: a smoke run
    python benchmarks/bench_tickers.py --profile 100            # cProfile one size: the top functions, printed

Data: one user CSV (Date, Open, High, Low, Close, Volume, Adj Close, Ticker) of N tickers × the XNYS sessions
2000-01-03 … 2019-12-31 (5,031 sessions): a geometric random walk whose daily volatility switches between 0.8 % and
2.5 % on a two-state Markov chain, consistent OHLC bars, positive volume, seeded. Written in a temp dir.

Path: the real assets in-process, `REGIME_SOURCE=csv`, a fresh data dir and a fresh SQLite Dagster instance per N
(the storage `make run` records into): `ohlcv` + `features` over the whole range as one single-run backfill, then
`regime_labels` (the default `jump` labeler) as one run per ticker partition. When labelling every ticker would take
more than --labels-budget seconds, an evenly spread sample of tickers is labelled and the total extrapolated from
their mean (marked * in the table, `extrapolated` in the JSON). Each N runs in a fresh subprocess, so its peak RSS
(``ru_maxrss``; /proc VmHWM after each stage) is its own.

A size costs about 4.5 minutes whatever N: Dagster writes two events per partition per asset (planned, then
materialized) into SQLite, ~10 000 events for 5,031 sessions × 2 assets. So the default is two small sizes.

Writes ``benchmarks/results/tickers.json`` for the sizes 50,100,250,500 and ``tickers_<sizes>.json`` for any other
set (so `make bench` never overwrites the recorded run), and prints a table: seconds per stage, peak RSS, the log-log
slopes of time and RSS against N, and where the time goes (phases timed inside the assets).
"""
from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import functools
import io
import json
import math
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

RESULTS = Path(__file__).parent / "results"
DEFAULT_SIZES = [10, 50]
RECORDED_SIZES = [50, 100, 250, 500]  # results/tickers.json
DEFAULT_LABELS_BUDGET = 30.0
QUICK_SIZES = [10, 20]
START, END = dt.date(2000, 1, 3), dt.date(2019, 12, 31)
VOLS = (0.008, 0.025)          # daily volatility of the calm and the turbulent state
STAY = (0.995, 0.97)           # probability of staying in each state from one session to the next
DRIFT = (0.0004, -0.0006)      # daily log drift per state
TARGETS = {"peak_rss_gib_at_500": 4.0, "max_slope": 1.1}


# ----------------------------------------------------------------------------------------------------- data
def tickers_for(n: int) -> list[str]:
    return [f"SYN{i:04d}" for i in range(n)]


def synthetic_csv(path: Path, n: int, seed: int = 0, end: dt.date = END) -> dict:
    """N tickers × the XNYS sessions START … end as one user CSV with a Ticker column; returns its shape."""
    from regime_platform import calendar

    days = calendar.sessions(START, end)
    t = len(days)
    rng = np.random.default_rng(seed)
    state = np.zeros((n, t), dtype=np.int8)
    state[:, 0] = rng.random(n) < 0.2
    stay = np.array(STAY)
    u = rng.random((n, t))
    for i in range(1, t):  # the Markov chain, vectorised over tickers
        prev = state[:, i - 1]
        state[:, i] = np.where(u[:, i] < stay[prev], prev, 1 - prev)
    vol, drift = np.array(VOLS)[state], np.array(DRIFT)[state]
    r = drift + vol * rng.standard_normal((n, t))
    close = rng.uniform(20, 200, size=(n, 1)) * np.exp(np.cumsum(r, axis=1))
    gap = 0.3 * vol * rng.standard_normal((n, t))
    open_ = np.concatenate([close[:, :1], close[:, :-1]], axis=1) * np.exp(gap)
    high = np.maximum(open_, close) * np.exp(np.abs(0.5 * vol * rng.standard_normal((n, t))))
    low = np.minimum(open_, close) * np.exp(-np.abs(0.5 * vol * rng.standard_normal((n, t))))
    years_left = (t - 1 - np.arange(t)) / 252
    adj = close * (1 - 0.015) ** years_left  # a 1.5 % yearly dividend: the adjusted close is below the close
    volume = np.round(rng.lognormal(13, 0.4, size=(n, t)) * (1 + 1.5 * state)) + 1
    o, h, lo, c, a = (np.round(x, 4) for x in (open_, high, low, close, adj))
    h, lo = np.maximum.reduce([h, o, c]), np.minimum.reduce([lo, o, c])  # consistent after rounding
    frame = pl.DataFrame({
        "Date": np.tile(np.array(days, dtype="datetime64[D]"), n),
        "Open": o.ravel(), "High": h.ravel(), "Low": lo.ravel(), "Close": c.ravel(), "Volume": volume.ravel(),
        "Adj Close": a.ravel(), "Ticker": np.repeat(np.array(tickers_for(n)), t),
    })
    frame.write_csv(path, date_format="%Y-%m-%d")
    return {"rows": frame.height, "sessions": t, "turbulent_share": round(float(state.mean()), 3),
            "csv_mb": round(path.stat().st_size / 2**20, 1)}


# ----------------------------------------------------------------------------------------------------- child
def rss_peak_mib() -> float:
    """The process's peak resident set so far: VmHWM from /proc (Linux), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return ru_maxrss_mib()


def ru_maxrss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


class Phases:
    """Seconds spent inside named functions of the platform, patched in place (the assets call them by module)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.stage = "setup"

    def wrap(self, owner, attr: str, name: str, stage: str | None = None):
        inner = getattr(owner, attr)

        @functools.wraps(inner)
        def timed(*args, **kwargs):
            if stage:
                self.stage = stage
            key = f"{self.stage}.{name}"
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t0
                self.calls[key] = self.calls.get(key, 0) + 1

        setattr(owner, attr, timed)

    def report(self) -> dict:
        return {k: {"seconds": round(v, 3), "calls": self.calls[k]} for k, v in sorted(self.seconds.items())}


def install_phases() -> Phases:
    import duckdb

    from regime_platform import labels
    from regime_platform import storage as wh
    from regime_platform.defs.features import assets as feature_assets
    from regime_platform.defs.ingestion import assets as ingestion_assets
    from regime_platform.ingestion import bars
    from regime_platform.ingestion.csv_source import CsvSource
    from regime_platform.storage import db, prices

    p = Phases()
    p.wrap(ingestion_assets, "ingest_bars", "ingest_bars (asset body)", stage="ohlcv")
    p.wrap(CsvSource, "_read", "csv read + cast")
    p.wrap(CsvSource, "_validate", "csv validate")
    p.wrap(CsvSource, "fetch_many", "csv fetch_many (read, validate, split)")
    p.wrap(wh, "ohlcv_dates_before", "plan: stored dates query")
    p.wrap(wh, "ohlcv_row", "plan: previous row query")
    p.wrap(bars, "plan_ingest", "plan_ingest")
    p.wrap(bars, "build_rows", "build_rows (chain-link, per ticker)")
    p.wrap(wh, "write_ohlcv", "write transaction")
    p.wrap(wh, "count_rows", "count_rows queries")
    p.wrap(duckdb, "connect", "duckdb.connect (every warehouse.connect())")
    for module in (wh, db, prices):  # each bound ensure_schema at import; every query runs it
        p.wrap(module, "ensure_schema", "ensure_schema DDL (every connect and query)")
    p.wrap(feature_assets, "selected_tickers", "selected_tickers", stage="features")
    p.wrap(wh, "read_price_lookback", "read prices (per ticker)")
    p.wrap(feature_assets, "features_for_range", "compute (per ticker)")
    p.wrap(wh, "write_features", "write transaction")
    p.wrap(wh, "read_labeler_frame", "read features (per ticker)", stage="labels")
    p.wrap(labels, "assign", "labeler fit + predict (per ticker)")
    p.wrap(wh, "replace_regime_labels", "write transaction")
    return p


def step_seconds(instance, run_id: str) -> dict:
    """Per asset step, from the run's event log: every event's gap since the one before is charged to the event's
    step — the planned events written when the run is created, the body (STEP_START → its first materialization),
    the materialization events; run-level events are the run's own overhead."""
    out: dict = {}
    logs = instance.all_logs(run_id)
    prev, started = logs[0].timestamp, {}
    for e in logs:
        gap, prev = e.timestamp - prev, e.timestamp
        kind = e.dagster_event.event_type_value if e.dagster_event else "log"
        step = out.setdefault(e.step_key or "run", {"seconds": 0.0, "planned_events": 0, "planned_seconds": 0.0,
                                                    "materializations": 0, "materialization_seconds": 0.0})
        step["seconds"] += gap
        if kind == "ASSET_MATERIALIZATION_PLANNED":
            step["planned_events"] += 1
            step["planned_seconds"] += gap
        elif kind == "STEP_START":
            started[e.step_key] = e.timestamp
        elif kind == "ASSET_MATERIALIZATION":
            if not step["materializations"]:
                step["body_seconds"] = e.timestamp - started[e.step_key]
            step["materializations"] += 1
            step["materialization_seconds"] += gap
    for step in out.values():
        step.update({k: round(v, 3) for k, v in step.items() if isinstance(v, float)})
    out["event_log_seconds"] = round(logs[-1].timestamp - logs[0].timestamp, 3)
    return out


def run_child(n: int, csv: Path, work: Path, labels_budget: float, profile: bool, end: dt.date) -> dict:
    tickers = tickers_for(n)
    data = work / "data"
    os.environ.update({"REGIME_SOURCE": "csv", "REGIME_OHLCV_CSV": str(csv), "REGIME_TICKERS": ",".join(tickers),
                       "REGIME_DATA_DIR": str(data), "REGIME_START": START.isoformat()})
    t_import = time.perf_counter()
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from regime_platform.defs.features.assets import features
    from regime_platform.defs.ingestion.assets import ohlcv
    from regime_platform.defs.labels.assets import regime_labels
    from regime_platform.defs.partitions import ticker_partitions
    from regime_platform.defs.resources import ArtifactIOManager, RegimeSettings, Warehouse

    import_seconds = time.perf_counter() - t_import
    phases = install_phases()
    resources = {
        "warehouse": Warehouse(duckdb=DuckDBResource(database=str(data / "warehouse.duckdb"))),
        "settings": RegimeSettings(data_dir=str(data), source="csv", ohlcv_csv=str(csv), tickers=tickers),
        "artifacts": ArtifactIOManager(base_dir=str(data / "artifacts")),
    }
    result: dict = {"n": n, "import_seconds": round(import_seconds, 2), "rss_mib_after_import": round(rss_peak_mib()),
                    "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    profiler = cProfile.Profile() if profile else None
    (work / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(work / "dagster_home")) as instance:
        tags = {"dagster/asset_partition_range_start": START.isoformat(),
                "dagster/asset_partition_range_end": end.isoformat()}
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        daily = dg.materialize([ohlcv, features], resources=resources, instance=instance, tags=tags)
        if profiler:
            profiler.disable()
        result["daily_run_seconds"] = round(time.perf_counter() - t0, 2)
        assert daily.success
        result["daily_steps"] = step_seconds(instance, daily.run_id)
        result["daily_steps"]["run"]["outside_event_log_seconds"] = round(
            result["daily_run_seconds"] - result["daily_steps"]["event_log_seconds"], 3)
        result["rss_mib_after_daily"] = round(rss_peak_mib())

        instance.add_dynamic_partitions(ticker_partitions.name, tickers)
        probe = min(3, n)
        timed: list[float] = []

        def label(ticker: str) -> None:
            t = time.perf_counter()
            assert dg.materialize([regime_labels], partition_key=ticker, resources=resources, instance=instance).success
            timed.append(time.perf_counter() - t)

        phases.stage = "labels"
        t_labels = time.perf_counter()
        for ticker in tickers[:probe]:
            label(ticker)
        estimate = n * sum(timed) / len(timed)
        if estimate <= labels_budget:
            chosen = tickers[probe:]
        else:  # an evenly spread sample, the total extrapolated from its mean
            k = max(1, int(labels_budget / (sum(timed) / len(timed))) - probe)
            chosen = [tickers[i] for i in np.linspace(probe, n - 1, num=min(k, n - probe), dtype=int)]
        if profiler:
            profiler.enable()
        for ticker in chosen:
            label(ticker)
        if profiler:
            profiler.disable()
        measured = time.perf_counter() - t_labels
        extrapolated = len(timed) < n
        result["labels"] = {
            "seconds": round(n * sum(timed) / len(timed) if extrapolated else measured, 2),
            "measured_seconds": round(measured, 2), "tickers_labelled": len(timed), "extrapolated": extrapolated,
            "seconds_per_ticker": {"mean": round(float(np.mean(timed)), 3), "min": round(min(timed), 3),
                                   "max": round(max(timed), 3)},
        }
        result["rss_mib_after_labels"] = round(rss_peak_mib())
        result["dagster_storage_mb"] = round(sum(f.stat().st_size for f in (work / "dagster_home").rglob("*")
                                                 if f.is_file()) / 2**20, 1)
    result["warehouse_mb"] = round((data / "warehouse.duckdb").stat().st_size / 2**20, 1)
    with resources["warehouse"].connect() as con:
        result["rows"] = {t: con.execute(f"SELECT count(*) FROM market.{t}").fetchone()[0]
                          for t in ("ohlcv", "features", "regime_labels")}
    result["phases"] = phases.report()
    result["peak_rss_mib"] = round(ru_maxrss_mib())
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(45)
        result["profile"] = out.getvalue()
    return result


# ----------------------------------------------------------------------------------------------------- parent
def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log y on log x (1 = linear growth)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    lx, ly = np.array(pts).T
    return round(float(np.polyfit(lx, ly, 1)[0]), 3)


def stages(r: dict) -> dict:
    steps = r["daily_steps"]
    return {"ohlcv": steps["ohlcv"]["seconds"], "features": steps["features"]["seconds"],
            "labels": r["labels"]["seconds"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="comma list of ticker counts")
    ap.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} (a smoke run)")
    ap.add_argument("--profile", type=int, metavar="N", help="cProfile one size N instead (printed, not recorded)")
    ap.add_argument("--labels-budget", type=float, default=DEFAULT_LABELS_BUDGET,
                    help="seconds of labelling per size beyond which an evenly spread sample of tickers is timed and "
                         f"the total extrapolated (default {DEFAULT_LABELS_BUDGET:.0f})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--end", type=dt.date.fromisoformat, default=END,
                    help=f"last session (default {END}; an earlier one only to try the script out quickly)")
    ap.add_argument("--output", type=Path, help="default results/tickers.json for the sizes 50,100,250,500, else "
                                                "results/tickers_<sizes>.json")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--profile-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child is not None:  # one size, in this fresh process: the result as JSON on the last stdout line
        print(json.dumps(run_child(args.child, args.csv, args.work, args.labels_budget, args.profile_child, args.end)))
        return 0

    sizes = [args.profile] if args.profile else QUICK_SIZES if args.quick else [int(s) for s in args.sizes.split(",")]
    output = args.output or RESULTS / ("tickers.json" if sizes == RECORDED_SIZES else
                                       f"tickers_{'_'.join(map(str, sizes))}.json")
    runs = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix=f"bench_tickers_{n}_") as tmp:
            work = Path(tmp)
            csv = work / "ohlcv.csv"
            t0 = time.perf_counter()
            shape = synthetic_csv(csv, n, args.seed, args.end)
            generate = time.perf_counter() - t0
            print(f"== {n} tickers: {shape['rows']:,} rows, {shape['csv_mb']} MB CSV ({generate:.1f} s)",
                  file=sys.stderr, flush=True)
            cmd = [sys.executable, __file__, "--child", str(n), "--csv", str(csv), "--work", str(work),
                   "--labels-budget", str(args.labels_budget), "--end", args.end.isoformat()] + (["--profile-child"] if args.profile else [])
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-5000:], file=sys.stderr)
                return proc.returncode
            run = json.loads(proc.stdout.strip().splitlines()[-1])
            run.update(process_seconds=round(time.perf_counter() - t0, 2), generate_seconds=round(generate, 2),
                       data=shape)
        if args.profile:
            print(run.pop("profile"))
            print(json.dumps({k: v for k, v in run.items()}, indent=1))
            return 0
        runs.append(run)
        s = stages(run)
        print(f"   ohlcv {s['ohlcv']:.1f} s, features {s['features']:.1f} s, labels {s['labels']:.1f} s"
              f"{' (extrapolated)' if run['labels']['extrapolated'] else ''}, peak RSS {run['peak_rss_mib']:.0f} MiB",
              file=sys.stderr, flush=True)

    ns = [r["n"] for r in runs]
    slopes = {stage: slope(ns, [stages(r)[stage] for r in runs]) for stage in ("ohlcv", "features", "labels")}
    slopes["total"] = slope(ns, [sum(stages(r).values()) for r in runs])
    slopes["peak_rss"] = slope(ns, [r["peak_rss_mib"] for r in runs])
    slopes["peak_rss_above_baseline"] = slope(ns, [r["peak_rss_mib"] - r["rss_mib_after_import"] for r in runs])
    at500 = next((r for r in runs if r["n"] == 500), None)
    payload = {
        "what": "N synthetic tickers × XNYS sessions 2000-01-03 … 2019-12-31 through the real assets in-process "
                "(REGIME_SOURCE=csv, one CSV with a Ticker column, a fresh data dir and SQLite Dagster instance per N): "
                "ohlcv + features as one single-run backfill, then regime_labels (jump) one run per ticker partition",
        "command": "python benchmarks/bench_tickers.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "run_at": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "versions": _versions(),
        "args": {k: (str(v) if isinstance(v, (Path, dt.date)) else v) for k, v in vars(args).items()
                 if k not in ("child", "csv", "work", "profile_child")},
        "sizes": ns,
        "seconds": {str(r["n"]): stages(r) for r in runs},
        "peak_rss_mib": {str(r["n"]): r["peak_rss_mib"] for r in runs},
        "slopes": slopes,
        "targets": {
            "peak_rss_under_4_gib_at_500": None if at500 is None else at500["peak_rss_mib"] < 4096,
            "growth_linear_or_better": all(v is None or v <= TARGETS["max_slope"] for k, v in slopes.items()
                                           if k != "peak_rss_above_baseline"),
        },
        "runs": runs,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")

    print(f"\n{'N':>5}{'ohlcv s':>10}{'features s':>12}{'labels s':>11}{'total s':>10}{'peak RSS MiB':>14}"
          f"{'warehouse MB':>14}{'dagster MB':>12}")
    for r in runs:
        s = stages(r)
        print(f"{r['n']:>5}{s['ohlcv']:>10.1f}{s['features']:>12.1f}{s['labels']:>10.1f}"
              f"{'*' if r['labels']['extrapolated'] else ' '}{sum(s.values()):>10.1f}{r['peak_rss_mib']:>14.0f}"
              f"{r['warehouse_mb']:>14.1f}{r['dagster_storage_mb']:>12.1f}")
    if any(r["labels"]["extrapolated"] for r in runs):
        print("* labels extrapolated from an evenly spread sample of tickers (--labels-budget)")
    print("log-log slopes: " + ", ".join(f"{k} {v}" for k, v in slopes.items()))
    print(f"targets: {payload['targets']}")
    print(f"written: {output}")
    return 0


def _versions() -> dict[str, str]:
    import dagster
    import duckdb

    return {"dagster": dagster.__version__, "duckdb": duckdb.__version__, "polars": pl.__version__,
            "numpy": np.__version__}


if __name__ == "__main__":
    raise SystemExit(main())
