"""The project's `.env` file, read the way the `dagster` commands read it, so that `regime-platform` and the
materializations it starts see one configuration.

Dagster's CLI (`dagster dev`, `dagster asset materialize`) reads `.env` in the working directory with python-dotenv
and sets every variable it names — over a value already in the environment — before it loads the definitions.
`regime-platform` does the same first thing, and its subprocesses inherit the result.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

from dotenv import dotenv_values


def read(directory: Path | str | None = None) -> dict[str, str]:
    """The variables `<directory or the working directory>/.env` sets (a name without a value sets nothing)."""
    path = Path(directory if directory is not None else os.getcwd()) / ".env"
    if not path.is_file():
        return {}
    return {name: value for name, value in dotenv_values(path).items() if value is not None}


def apply(directory: Path | str | None = None, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Set the variables of `.env` in ``environ`` (the process environment) as Dagster does; their names."""
    values = read(directory)
    (os.environ if environ is None else environ).update(values)
    return list(values)
