"""`regime-platform run`: materialize every asset end to end in the Dagster instance that `make ui` shows.

It first asks the source chain which sessions it can serve, then materializes REGIME_START … the last
closed session served: one run for the daily-partitioned assets (a single-run backfill), then one run for
the assets that are not partitioned. Sessions no source can serve are reported, never fetched.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys

from regime_platform import calendar
from regime_platform.settings import Settings, SettingsError
from regime_platform.sources import SAMPLE_SOURCE, SourceError, build_chain

# Each step: (label, asset selection, partitioned?). Later groups are added here as they are built.
STEPS: list[tuple[str, str, bool]] = [
    ("daily-partitioned assets (ohlcv, features)", "group:ingestion or group:features", True),
    ("regime labels", "group:labels", False),
    ("models: walk-forward evaluation and production fits", "group:modeling", False),
    ("evaluation: metrics, change timing, backtest, plots", "group:evaluation", False),
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
        reason = ("past the end of the bundled sample (2018-12-31)" if source == SAMPLE_SOURCE
                  else f"not yet closed or not yet served by {source}")
        say(f"{len(skipped)} partitions {skipped[0]} … {skipped[-1]} are {reason}: not fetched, left unmaterialized.")
    stored = stored_last_session(settings)
    if stored and stored > last:
        raise SystemExit(
            f"{source} serves sessions only up to {last}, but {settings.warehouse_path} already holds {stored}: "
            "refusing to overwrite live history with a shorter source — go online, or use a fresh REGIME_DATA_DIR."
        )
    if source == SAMPLE_SOURCE:
        say(f"OFFLINE: serving the bundled sample — the S&P 500 index (^GSPC) standing in for {settings.ticker}, "
            f"{first} … {last}; rows say source={SAMPLE_SOURCE}.")
    return first, last, source


def materialize(selection: str, partition_range: tuple[dt.date, dt.date] | None) -> None:
    cmd = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "regime_platform.definitions",
           "--select", selection]
    if partition_range:
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
    except SettingsError as exc:
        raise SystemExit(str(exc)) from exc
    first, last, source = plan_range(settings)
    say(f"materializing {settings.ticker} {first} … {last} ({len(calendar.sessions(first, last))} sessions) "
        f"from {source}")
    with tqdm(STEPS, desc="regime-platform run", unit="step", file=sys.stdout) as bar:
        for label, selection, partitioned in bar:
            bar.set_postfix_str(label)
            materialize(selection, (first, last) if partitioned else None)
    say(f"done: {settings.ticker} {first} … {last} from {source}. Open the UI with `make ui` to inspect it.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="regime-platform", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="materialize every asset end to end (what `make run` calls)").set_defaults(func=run)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
