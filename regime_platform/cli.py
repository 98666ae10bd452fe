"""`regime-platform run | forecast | status`: run the platform, read the ledger, see what is fresh.

`run` materializes every asset end to end in the Dagster instance that `make ui` shows. It first asks the source chain which sessions it can serve, then materializes REGIME_START … the last
closed session served: one run for the daily-partitioned assets (a single-run backfill), then one run for
the assets that are not partitioned, then the forecast ledger for the last closed session only (a model fit
today on all history would be in-sample for earlier dates). Sessions no source can serve are reported, never
fetched. `forecast` and `status` only read the warehouse (and the Dagster instance), as tables or `--json`.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from regime_platform import calendar
from regime_platform import storage as warehouse
from regime_platform.features.compute import model_feature_set
from regime_platform.forecasting import ledger
from regime_platform.ingestion.sources import (
    SAMPLE_LAST,
    SourceError,
    build_chain,
    is_sample,
    sample_stand_in,
)
from regime_platform.labels.names import names_by_id
from regime_platform.settings import Settings, SettingsError

# Each step: (label, asset selection, partitions): "range" = REGIME_START … the last closed session served,
# "last" = that last session only, None = not partitioned. Later groups are added here as they are built.
STEPS: list[tuple[str, str, str | None]] = [
    ("daily-partitioned assets (ohlcv, features)", "group:ingestion or group:features", "range"),
    ("regime labels", "group:labels", None),
    ("models: walk-forward evaluation and production fits", "group:modeling", None),
    ("evaluation: metrics, change timing, backtest, plots", "group:evaluation", None),
    ("explainability: attributions and regime profiles", "group:explainability", None),
    ("forecast ledger: the last closed session only", "regime_forecasts", "last"),
    ("forecast scoreboard", "forecast_scoreboard", None),
]


def say(message: str) -> None:
    print(f"[regime-platform] {message}", flush=True)


def stored_last_session(settings: Settings) -> dt.date | None:
    """The newest stored session of the ticker, read without holding the file open."""
    path = settings.warehouse_path
    if not path.exists():
        return None
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise SystemExit(f"cannot open {path} ({exc}): another process (a running `make ui` run?) holds it; "
                         "wait for that run to finish and try again.") from exc
    try:
        row = con.execute("SELECT max(date) FROM market.ohlcv WHERE ticker = ?", [settings.ticker]).fetchone()
    except duckdb.CatalogException:
        return None
    finally:
        con.close()
    return row[0] if row else None


def plan_range(settings: Settings) -> tuple[dt.date, dt.date, str]:
    chain = build_chain(settings.source, stooq_api_key=settings.stooq_api_key, ohlcv_csv=settings.ohlcv_csv)
    try:
        source, last_served, warnings = chain.last_session(settings.ticker)
    except SourceError as exc:
        raise SystemExit(f"no data source is available: {exc}") from exc
    for warning in warnings:
        say(f"warning: {warning}")
    first = calendar.sessions(settings.start, settings.start + dt.timedelta(days=10))[0]
    newest_key = calendar.sessions(dt.date.today(), dt.date.today() + dt.timedelta(days=7))[0]
    last = min(last_served, calendar.last_closed_session())
    if last < first:
        raise SystemExit(f"{source} serves sessions up to {last_served}, before REGIME_START={settings.start}; "
                         "choose an earlier REGIME_START or another REGIME_SOURCE.")
    skipped = calendar.sessions(calendar.next_session(last), newest_key)
    if skipped:
        reason = (f"past the end of the bundled sample ({SAMPLE_LAST})" if is_sample(source)
                  else f"not yet closed or not yet served by {source}")
        say(f"{len(skipped)} partitions {skipped[0]} … {skipped[-1]} are {reason}: not fetched, left unmaterialized.")
    stored = stored_last_session(settings)
    if stored and stored > last:
        raise SystemExit(
            f"{source} serves sessions only up to {last}, but {settings.warehouse_path} already holds {stored}: "
            "refusing to overwrite live history with a shorter source — go online, or use a fresh REGIME_DATA_DIR."
        )
    if is_sample(source):
        say(f"OFFLINE: serving the bundled sample — {sample_stand_in(settings.ticker)}; {first} … {last} "
            f"planned; rows say source={source}.")
    return first, last, source


# Every step in the command's own process: the default multiprocess executor starts a fresh Python (torch, dagster,
# the definitions) for each of the run's ~40 steps, about 16 s each on 2 cores — most of a short run — and the
# steps cannot run side by side anyway (one writer on the DuckDB file). Runs launched from the UI keep the default.
IN_PROCESS = json.dumps({"execution": {"config": {"in_process": {}}}})


def materialize(selection: str, partition_range: tuple[dt.date, dt.date] | None) -> None:
    cmd = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "regime_platform.definitions",
           "--select", selection, "--config-json", IN_PROCESS]
    if partition_range and partition_range[0] == partition_range[1]:
        cmd += ["--partition", partition_range[0].isoformat()]
    elif partition_range:
        cmd += ["--partition-range", f"{partition_range[0]}...{partition_range[1]}"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}  # library deprecation chatter is not the user's business
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if shown(line):
            print(line, end="", flush=True)
    if proc.wait() != 0:
        raise SystemExit(f"materializing {selection!r} failed (exit {proc.returncode}); the run's logs are above "
                         "and in the Dagster UI (`make ui`, Runs).")


# Dagster logs two DEBUG events per partition; a person wants the INFO/WARNING lines and the step outcomes.
_KEEP_DEBUG = ("STEP_SUCCESS", "STEP_FAILURE", "RUN_SUCCESS", "RUN_FAILURE", "ASSET_CHECK_EVALUATION")


def shown(line: str) -> bool:
    if " - DEBUG - " not in line:
        return True
    return any(event in line for event in _KEEP_DEBUG)


def run(_args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if not os.environ.get("DAGSTER_HOME"):
        raise SystemExit("DAGSTER_HOME is not set: run `make run` (it sets DAGSTER_HOME=./.dagster) so the runs "
                         "appear in `make ui`.")
    try:
        settings = Settings.from_env()
        model_feature_set(settings.features)  # a bad REGIME_FEATURES stops here, before any download
    except SettingsError as exc:
        raise SystemExit(str(exc)) from exc
    first, last, source = plan_range(settings)
    say(f"materializing {settings.ticker} {first} … {last} ({len(calendar.sessions(first, last))} sessions) "
        f"from {source}")
    with tqdm(STEPS, desc="regime-platform run", unit="step", file=sys.stdout) as bar:
        for label, selection, partitions in bar:
            bar.set_postfix_str(label)
            if partitions == "last":
                say(f"forecast ledger: {last} only; earlier sessions would be forecast by a model fit after them "
                    "(in-sample), so the ledger starts today and grows one session a day.")
            materialize(selection, {"range": (first, last), "last": (last, last), None: None}[partitions])
    say(f"done: {settings.ticker} {first} … {last} from {source}. Open the UI with `make ui` to inspect it.")
    return 0


# ---- forecast / status: read-only views for people who live in a terminal ----------------------------------

LOCK_WAIT_SECONDS = 10.0


@contextlib.contextmanager
def open_warehouse(path: Path, wait: float = LOCK_WAIT_SECONDS):
    """A read-only connection; while a run holds the file, retry for `wait` seconds, then say so in one sentence."""
    import duckdb

    if not path.exists():
        raise SystemExit(f"no warehouse at {path}: run `make run` first (or set REGIME_DATA_DIR to your data dir).")
    deadline = time.monotonic() + wait
    while True:
        try:
            con = duckdb.connect(str(path), read_only=True)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise SystemExit(f"the warehouse {path} is locked by another process (a Dagster run is writing "
                                 f"it); waited {wait:g} s — try again when that run finishes.") from None
            time.sleep(0.25)
    try:
        yield con
    finally:
        con.close()


def text_table(rows: list[dict], columns: list[str] | None = None) -> str:
    if not rows:
        return "(none)"
    columns = columns or list(rows[0])

    def cell(v) -> str:
        if v is None:
            return "-"
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def settings_or_exit() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(str(exc)) from exc


def forecast(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    with open_warehouse(settings.warehouse_path, args.wait) as con:
        latest = ledger.latest_forecasts(warehouse.read_ledger(con), names_by_id(warehouse.stored_regime_names(con)))
    rows = ledger.jsonable(latest)
    if args.json:
        print(json.dumps({"forecasts": rows}, indent=2))
    elif not rows:
        print("the ledger is empty: materialize regime_forecasts for the last closed session (`make run` does).")
    else:
        print(text_table(rows, ["model", "as_of", "target_date", "regime_name", "probability", "model_version",
                                "status"]))
    return 0


def status(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    with open_warehouse(settings.warehouse_path, args.wait) as con:
        fresh = warehouse.freshest_dates(con, settings.ticker)
        board = ledger.scoreboard(warehouse.read_ledger(con), warehouse.read_oos_pooled(con))
    # Dagster is imported only here: `forecast` and the planner of `run` never need it (about 3 s of start-up)
    from regime_platform.defs.run_history import instance_view

    view = instance_view()
    tables = [{"table": f"market.{t}", "newest_date": d.isoformat() if d else None} for t, d in fresh.items()]
    scoreboard = ledger.jsonable(board.drop("first_as_of", "last_as_of"))
    if args.json:
        print(json.dumps({"warehouse": str(settings.warehouse_path), "tables": tables, **view,
                          "scoreboard": scoreboard}, indent=2))
        return 0
    print(f"warehouse {settings.warehouse_path}\n\n{text_table(tables)}\n")
    if view.get("note"):
        print(view["note"] + "\n")
    else:
        print("assets (Dagster instance)\n" + text_table(view["assets"]) + "\n")
        print("failing checks\n" + text_table(view["failing_checks"]) + "\n")
    print("scoreboard (live ledger vs walk-forward)\n" + text_table(
        scoreboard, ["model", "horizon", "scored", "pending", "live_hit_rate", "live_macro_f1", "live_brier",
                     "wf_hit_rate", "wf_macro_f1", "wf_brier"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="regime-platform", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="materialize every asset end to end (what `make run` calls)").set_defaults(func=run)
    for name, func, text in (("forecast", forecast, "the latest forecast of every model, from the ledger"),
                             ("status", status, "freshest partitions, failing checks and the live scoreboard")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("--wait", type=float, default=LOCK_WAIT_SECONDS,
                       help="seconds to wait while a run holds the DuckDB file (default %(default)s)")
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
