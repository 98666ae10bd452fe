"""The `dagster asset materialize` subprocesses that `regime-platform run` drives, and what of their log it shows.

Each run is the real Dagster command, recorded in the instance `make ui` shows; its lines are echoed, minus the
per-partition DEBUG events and minus a warning the planner has already said (each failure said once).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Collection, Iterable, Iterator


def run_config(tickers: list[str] | None = None, assets: tuple[str, ...] = ()) -> str:
    """Every step in the command's own process (below), and the tickers of the daily assets when not all."""
    config: dict = {"execution": {"config": {"in_process": {}}}}
    if tickers is not None:
        config["ops"] = {asset: {"config": {"tickers": tickers}} for asset in assets}
    return json.dumps(config)


# Every step in the command's own process: the default multiprocess executor starts a fresh Python (torch, dagster,
# the definitions) for each of the run's ~40 steps, about 16 s each on 2 cores — most of a short run — and the
# steps cannot run side by side anyway (one writer on the DuckDB file). The definitions' executor does the same for runs
# launched from the UI (definitions.py); this config only says it explicitly.
IN_PROCESS = run_config()


def materialize(selection: str, partition_range: tuple[str, str] | None, config: str = IN_PROCESS,
                said: Collection[str] = ()) -> None:
    """One `dagster asset materialize` of ``selection``; its log echoed but for the lines repeating ``said``."""
    cmd = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "regime_platform.definitions",
           "--select", selection, "--config-json", config]
    if partition_range and partition_range[0] == partition_range[1]:
        cmd += ["--partition", str(partition_range[0])]
    elif partition_range:
        cmd += ["--partition-range", f"{partition_range[0]}...{partition_range[1]}"]
    _echo(cmd, f"materializing {selection!r}", said)


DEFINITIONS = ("-m", "regime_platform.definitions")


def execute_job(job: str, partition_range: tuple[str, str], config: str = IN_PROCESS,
                said: Collection[str] = (), location: tuple[str, ...] = DEFINITIONS) -> None:
    """One `dagster job execute` of ``job`` over the sessions ``partition_range``, echoed likewise; ``location`` is
    where Dagster loads the job from (the platform's definitions; benchmarks/bench_platform.py points it elsewhere)."""
    first, last = partition_range
    tags = ({"dagster/partition": first} if first == last else
            {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last})
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="regime-run-config-") as file:
        file.write(config)  # JSON is YAML: `-c` reads it
        file.flush()
        _echo([sys.executable, "-m", "dagster", "job", "execute", *location, "-j", job,
               "-c", file.name, "--tags", json.dumps(tags)], f"running {job}", said)


def _echo(cmd: list[str], what: str, said: Collection[str]) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}  # library deprecation chatter is not the user's business
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in echoed(proc.stdout, said):
        print(line, end="", flush=True)
    if proc.wait() != 0:
        raise SystemExit(f"{what} failed (exit {proc.returncode}); the run's logs are above and in the Dagster UI "
                         "(`make ui`, Runs).")


# Dagster logs two DEBUG events per partition; a person wants the INFO/WARNING lines and the step outcomes.
_KEEP_DEBUG = ("STEP_SUCCESS", "STEP_FAILURE", "RUN_SUCCESS", "RUN_FAILURE", "ASSET_CHECK_EVALUATION")


def echoed(lines: Iterable[str], said: Collection[str] = ()) -> Iterator[str]:
    """The lines of a run's log to echo: each message :func:`shown` or not as a whole, its further lines (a table, a
    traceback) going with its first."""
    showing = True
    for line in lines:
        if not continues(line):
            showing = shown(line, said)
        if showing:
            yield line


def continues(line: str) -> bool:
    """Whether a line of the run's log continues the message above it rather than starting one."""
    return not line.strip() or line.startswith(("|", " ", "\t"))


def shown(line: str, said: Collection[str] = ()) -> bool:
    """Whether to echo a line of the run's log: not a per-partition DEBUG event, nor a warning already said."""
    if " - WARNING - " in line and any(sentence in line for sentence in said):
        return False  # the planner said this source failure a moment ago; the UI's run log still has it
    if " - DEBUG - " not in line:
        return True
    return any(event in line for event in _KEEP_DEBUG)
