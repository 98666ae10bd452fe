"""The Makefile keeps a DAGSTER_HOME you set and never overwrites a dagster.yaml you edited (run in a copy)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path):
    for name in ("Makefile", "dagster.yaml.template", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def make(project: Path, **env) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"} | env
    done = subprocess.run(["make", "-s", "dagster-home"], cwd=project, env=environ, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_default_home_is_the_projects_own(project):
    assert make(project) == ""
    assert (project / ".dagster" / "dagster.yaml").read_text() == (project / "dagster.yaml.template").read_text()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_a_users_dagster_home_wins_and_their_edits_are_kept(project):
    home = project / "my_home"
    make(project, DAGSTER_HOME=str(home))
    assert (home / "dagster.yaml").exists() and not (project / ".dagster").exists()
    edited = (home / "dagster.yaml").read_text() + "retention:\n  schedule:\n    purge_after_days: 30\n"
    (home / "dagster.yaml").write_text(edited)
    template = project / "dagster.yaml.template"
    template.write_text(template.read_text() + "# a newer template\n")
    later = (home / "dagster.yaml").stat().st_mtime + 5
    os.utime(template, (later, later))
    said = make(project, DAGSTER_HOME=str(home))
    assert (home / "dagster.yaml").read_text() == edited  # never overwritten
    assert said.startswith(f"note: dagster.yaml.template is newer than {home}/dagster.yaml, which is kept as it is; "
                           "compare them (diff dagster.yaml.template")
    assert said.count("\n") == 1


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_installs_the_runtime_only_and_make_test_adds_the_dev_extras(project):
    def planned(target: str) -> str:
        done = subprocess.run(["make", "-n", target], cwd=project, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run, test = planned("run"), planned("test")
    assert "pip install -q -e . " in run and "[dev]" not in run and "regime-platform run" in run
    assert "pip install -q -e '.[dev]'" in test and "pytest" in test
