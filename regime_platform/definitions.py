"""The one entry point: every asset, check, schedule, sensor and resource of the platform.

Everything lives in the defs/ folder, one module per asset group plus resources.py (the resources'
`@dg.definitions`) and automation.py (schedules and sensors); `load_from_defs_folder` merges them.
"""
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
