"""The one entry point: every asset, check, schedule, sensor and resource of the platform.

Everything lives in the defs/ folder, one module per asset group plus resources.py (the resources'
`@dg.definitions`) and automation.py (schedules and sensors); `load_from_defs_folder` merges them.
"""
from pathlib import Path

import dagster as dg

# Every run executes its steps in one process unless its config asks for `multiprocess`: the warehouse takes one
# writer at a time (the `duckdb` pool of 1 serialises the steps anyway), and the multiprocess executor starts a fresh
# Python per step — about 16 s each on 2 cores, torch and the definitions imported — so a run launched from the UI
# would take far longer than `make run` for nothing. The cluster definitions use their own executor.
IN_PROCESS_BY_DEFAULT = dg.multi_or_in_process_executor.configured(
    lambda config: config,
    config_schema=dg.Field(dg.multi_or_in_process_executor.config_schema.as_field().config_type,
                           default_value={"in_process": {}}),
    name="in_process_by_default",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
                                dg.Definitions(executor=IN_PROCESS_BY_DEFAULT))
