"""The instance the Makefile sets up (dagster.yaml.template) keeps every run's events in one SQLite file, each event
once: Dagster's default SQLite storage writes each asset event twice (the run's own database under history/runs/ and
history/runs/index.db), which doubled the bookkeeping of a history backfill (docs/scaling.md)."""
from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage

ROOT = Path(__file__).resolve().parent.parent

days = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-11")


@dg.asset(partitions_def=days, pool="duckdb")
def daily_numbers(context):
    return dg.MaterializeResult(metadata={"day": context.partition_key})


def test_the_template_instance_stores_each_event_once_in_one_file(tmp_path, monkeypatch):
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml.template").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    keys = days.get_partition_keys()
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, ConsolidatedSqliteEventLogStorage)
        assert instance.event_log_storage.supports_global_concurrency_limits  # the `duckdb` pool still queues steps
        for key in keys:
            assert dg.materialize([daily_numbers], instance=instance, partition_key=key).success
        stored = instance.fetch_materializations(daily_numbers.key, limit=100).records
        assert sorted(r.partition_key for r in stored) == keys  # every partition readable, as the UI reads them
        assert instance.get_materialized_partitions(daily_numbers.key) == set(keys)
    databases = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.db"))
    assert databases == ["event_log.db", "history/runs.db", "schedules/schedules.db"], databases  # no per-run shards
    with sqlite3.connect(tmp_path / "event_log.db") as con:
        (count,) = con.execute("select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'"
                               ).fetchone()
    assert count == len(keys)  # once each


def _slow_slot_reads(conn, cursor, statement, *args):
    """Reads of the pool's slots take 0.3 s to come back: a loaded machine between Dagster's read of a free slot and
    its update of it, the window two runs started together meet by chance (about one try in ten here)."""
    if statement.lstrip().upper().startswith("SELECT") and "concurrency_slots" in statement:
        time.sleep(0.3)


def _claim(home, barrier, step, claims):
    os.environ["DAGSTER_HOME"] = home
    storage = dg.DagsterInstance.get().event_log_storage
    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "after_cursor_execute", _slow_slot_reads)
    barrier.wait()
    status = storage.claim_concurrency_slot("duckdb", f"run-{step}", "ohlcv")
    claims.put(status.is_claimed)


def _claimed_at_once(home: Path, contenders: int = 3) -> int:
    """How many of ``contenders`` processes, released at one instant, got the `duckdb` slot (limit 1)."""
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.initialize_concurrency_limit_to_default("duckdb")
        assert [(p.name, p.limit) for p in instance.event_log_storage.get_pool_limits()] == [("duckdb", 1)]
    fork = multiprocessing.get_context("fork")
    barrier, claims = fork.Barrier(contenders), fork.Queue()
    procs = [fork.Process(target=_claim, args=(str(home), barrier, i, claims)) for i in range(contenders)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    return sum(claims.get(timeout=5) for _ in procs)


@pytest.mark.parametrize("storage, winners", [
    ("Dagster's own ConsolidatedSqliteEventLogStorage", 3),  # the fault: every contender takes the one slot
    ("the template's", 1)])
def test_runs_started_together_get_the_one_pool_slot_once(tmp_path, monkeypatch, storage, winners):
    template = (ROOT / "dagster.yaml.template").read_text()
    if storage != "the template's":
        template = template.replace("module: regime_platform.defs.event_log_storage",
                                    "module: dagster._core.storage.event_log").replace(
            "class: PoolSafeSqliteEventLogStorage", "class: ConsolidatedSqliteEventLogStorage")
    (tmp_path / "dagster.yaml").write_text(template)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert _claimed_at_once(tmp_path) == winners
