"""Dagster's own floor for `bench_platform.py`: do-nothing assets on the platform's session partitions.

The same shape as the jobs `regime-platform run` and the daily schedule launch — the history's two runs (two
assets, then one) and a daily run of as many steps as `daily_forecast_job` (``FLOOR_DAILY_STEPS``, which the
benchmark reads from the real job) — each asset returning nothing, no metadata, no warehouse. What these runs cost
is what Dagster charges for the partitions and steps alone: process start, definitions load, the run and step
events, two events per partition. Loaded with `dagster job execute -f benchmarks/floor_definitions.py`.
"""
import os

import dagster as dg

from regime_platform.defs.partitions import session_partitions

DAILY_STEPS = int(os.environ.get("FLOOR_DAILY_STEPS", "5"))


def _noop_assets(prefix: str, count: int) -> list[dg.AssetsDefinition]:
    built = []
    for k in range(count):
        deps = [built[-1]] if built else []

        @dg.asset(name=f"{prefix}_{k}", partitions_def=session_partitions, deps=deps,
                  backfill_policy=dg.BackfillPolicy.single_run(), group_name=prefix)
        def _noop() -> None:
            return None

        built.append(_noop)
    return built


ingestion, features, daily = (_noop_assets("floor_ingestion", 2), _noop_assets("floor_features", 1),
                              _noop_assets("floor_daily", DAILY_STEPS))
IN_PROCESS = dg.in_process_executor

defs = dg.Definitions(
    assets=[*ingestion, *features, *daily],
    jobs=[dg.define_asset_job(f"{group}_job", selection=dg.AssetSelection.groups(group), executor_def=IN_PROCESS)
          for group in ("floor_ingestion", "floor_features", "floor_daily")],
)
