"""What the Dagster instance knows of past runs, for the terminal (`regime-platform status`): the freshest
materialized partition of each asset and the checks whose latest evaluation failed; and the runs a killed process
left behind, released before `regime-platform run` starts. No asset lives here."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg


def instance_view() -> dict:
    """The freshest materialized partition (or time) of each asset and the checks whose latest evaluation failed,
    from the Dagster instance in DAGSTER_HOME; empty when there is none."""
    home = os.environ.get("DAGSTER_HOME")
    if not home or not (Path(home) / "dagster.yaml").exists():
        return {"assets": [], "failing_checks": [], "note": "DAGSTER_HOME is not set: run history not read"}
    assets, failing = [], {}
    with dg.DagsterInstance.get() as instance:
        for key in sorted(instance.get_asset_keys(), key=lambda k: k.to_user_string()):
            partitions = instance.get_materialized_partitions(key)
            event = instance.get_latest_materialization_event(key)
            assets.append({"asset": key.to_user_string(), "freshest_partition": max(partitions, default=None),
                           "last_materialized": dt.datetime.fromtimestamp(event.timestamp, dt.timezone.utc)
                           .strftime("%Y-%m-%d %H:%M UTC") if event else None})
        records = instance.get_event_records(
            dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION), limit=2000, ascending=False)
        seen = set()
        for record in records:
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            key = (evaluation.asset_key.to_user_string(), evaluation.check_name)
            if key in seen:
                continue
            seen.add(key)
            if not evaluation.passed:
                failing[key] = {"asset": key[0], "check": key[1], "severity": evaluation.severity.value,
                                "description": evaluation.description or ""}
    return {"assets": assets, "failing_checks": list(failing.values())}


def _process_is_alive(pid: int, since: float) -> bool:
    """Whether process ``pid`` of this machine still runs and is the one that started at ``since`` (epoch seconds):
    on Linux a pid reused by a process started later is not it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    stat, boot = Path(f"/proc/{pid}/stat"), Path("/proc/stat")
    if stat.exists() and boot.exists():
        ticks = int(stat.read_text().rsplit(")", 1)[1].split()[19])  # field 22: start time, clock ticks after boot
        booted = next(int(line.split()[1]) for line in boot.read_text().splitlines() if line.startswith("btime"))
        return booted + ticks / os.sysconf("SC_CLK_TCK") <= since + 2
    return True


def release_dead_runs(instance: dg.DagsterInstance | None = None) -> list[str]:
    """Runs left STARTED by a process of this machine that is gone (SIGKILL, a crash, out of memory), each marked
    failed with one sentence, and the pool slots of every finished run freed: a killed run keeps its ``duckdb`` slot
    and every later run waits on "Step blocked by limit for pool duckdb" forever, since without the daemon's run
    monitoring nothing frees it. Only on a local SQLite instance (a pid means nothing across machines). ``instance``:
    the one given (a schedule's), else DAGSTER_HOME's. Returns the sentences, one per run released."""
    if instance is not None:
        return _release(instance)
    home = os.environ.get("DAGSTER_HOME")
    if not home or not (Path(home) / "dagster.yaml").exists():
        return []
    with dg.DagsterInstance.get() as instance:
        return _release(instance)


def _release(instance: dg.DagsterInstance) -> list[str]:
    storage = instance.event_log_storage
    if "Sqlite" not in type(storage).__name__:
        return []
    said = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        run = record.dagster_run
        starts = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_START).records
        if not starts or starts[0].event_log_entry.dagster_event is None:
            continue
        entry = starts[0].event_log_entry
        pid = entry.dagster_event.pid
        if pid is None or _process_is_alive(pid, entry.timestamp):
            continue
        said.append(f"run {run.run_id[:8]} of {run.job_name} was left running by process {pid}, which is gone "
                    "(killed or crashed): marked failed and its duckdb pool slot freed; materialize what it was "
                    "doing again.")
        instance.report_run_failed(run, said[-1])
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids():
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
    return said
