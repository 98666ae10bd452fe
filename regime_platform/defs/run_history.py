"""What the Dagster instance knows of past runs, for the terminal (`regime-platform status`): the freshest
materialized partition of each asset and the checks whose latest evaluation failed. No asset lives here."""
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
