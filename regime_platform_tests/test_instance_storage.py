"""The instance the Makefile sets up (dagster.yaml.template) keeps every run's events in one SQLite file, each event
once: Dagster's default SQLite storage writes each asset event twice (the run's own database under history/runs/ and
history/runs/index.db), which doubled the bookkeeping of a history backfill (docs/scaling.md)."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import dagster as dg

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
        assert type(instance.event_log_storage).__name__ == "ConsolidatedSqliteEventLogStorage"
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
