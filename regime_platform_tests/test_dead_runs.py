"""A run whose process is SIGKILLed keeps its `duckdb` pool slot: every later run of the instance then waits on "Step
blocked by limit for pool duckdb" forever (seen: a re-run after a kill never finished). `release_dead_runs`, which
`regime-platform run` calls first, marks such a run failed in one sentence and frees its slot, so the next run goes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from regime_platform_tests.instance import instance_at

ROOT = Path(__file__).resolve().parent.parent
DEFS = '''
import os, time
import dagster as dg

@dg.asset(pool="duckdb")
def pooled(context):
    context.log.info("pooled: working")
    time.sleep(float(os.environ["WORK_SECONDS"]))
    return 1

defs = dg.Definitions(assets=[pooled])
'''


def materialize(tmp_path: Path, home: Path, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "DAGSTER_HOME": str(home), "WORK_SECONDS": str(seconds), "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-m", "dagster", "asset", "materialize", "-f", str(tmp_path / "defs.py"),
                             "--select", "pooled"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def finishes(proc: subprocess.Popen, timeout: float) -> bool:
    try:
        proc.wait(timeout=timeout)
        return proc.returncode == 0
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return False


@pytest.mark.slow
def test_a_killed_runs_pool_slot_is_freed_and_the_next_run_finishes(tmp_path, monkeypatch):
    import dagster as dg

    from regime_platform.defs.run_history import release_dead_runs

    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml.template").read_text())
    (tmp_path / "defs.py").write_text(DEFS)
    with instance_at(home):
        pass  # the instance exists before the first run (`make run` creates it so)
    killed = materialize(tmp_path, home, 600)
    for line in killed.stdout:  # holding the slot once its step logs
        if "pooled: working" in line:
            break
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    time.sleep(1)
    # the fault, planted through the real path: the dead run holds the slot and the next run waits behind it
    assert not finishes(materialize(tmp_path, home, 0), timeout=45)

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    said = release_dead_runs()
    # both: the killed one, and the one that waited behind it until the timeout killed it too
    assert len(said) == 2 and all("was left running by process" in x and "gone" in x for x in said), said
    assert release_dead_runs() == []  # once
    with instance_at(home) as instance:
        runs = {r.run_id: r.status for r in instance.get_runs()}
        assert sorted(s.value for s in runs.values()) == ["FAILURE", "FAILURE"]
    assert finishes(materialize(tmp_path, home, 0), timeout=120)  # the slot is free: the next run goes
    with instance_at(home) as instance:
        assert dg.DagsterRunStatus.SUCCESS in {r.status for r in instance.get_runs()}


def test_a_live_run_is_left_alone(tmp_path, monkeypatch):
    from regime_platform.defs.run_history import _process_is_alive

    assert _process_is_alive(os.getpid(), time.time())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not _process_is_alive(proc.pid, time.time() - 5)
    # a pid that now belongs to a process started after the run began is not the run's
    assert not _process_is_alive(os.getpid(), time.time() - 10 ** 7)
