"""Open the Dagster instance of a test's DAGSTER_HOME from the test process, as every platform process opens it.

dagster.yaml.template places the event log under ``{env: DAGSTER_HOME}``, so the instance resolves that variable when
it loads (`DagsterInstance.from_config(dir)` alone fails without it): the variable is set while the instance is open.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from unittest import mock


@contextlib.contextmanager
def instance_at(home: Path):
    import dagster as dg

    with mock.patch.dict(os.environ, {"DAGSTER_HOME": str(home)}), dg.DagsterInstance.get() as instance:
        yield instance
