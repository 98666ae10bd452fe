"""The instance's event log (named in dagster.yaml.template): Dagster's one-file SQLite event log, with the `duckdb`
pool's slots claimed under an inter-process lock.

Why: Dagster claims a pool slot by reading a free slot and then updating it (``SELECT … FOR UPDATE`` then
``UPDATE``); SQLite ignores ``FOR UPDATE`` and Python's sqlite3 runs the read outside the write transaction, so
two processes that ask at the same instant both get the one slot (and two that create the pool at once can give it
two slots). Two `dagster asset materialize` processes started together then ran the ohlcv step side by side in
about one try in ten (regime_platform_tests/test_instance_storage.py plants it). Holding an exclusive `flock` on
``$DAGSTER_HOME/pool.lock`` around each read-modify-write of the pool tables makes each claim, release and limit
change atomic across processes; every other query goes through unchanged."""
from __future__ import annotations

import fcntl
import functools
import os
import threading
from contextlib import contextmanager
from pathlib import Path

from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage

LOCK_FILE = "pool.lock"
# The storage methods that read the pool tables and then write them: each runs whole under the lock.
POOL_WRITES = ("initialize_concurrency_limit_to_default", "set_concurrency_slots", "delete_concurrency_limit",
               "claim_concurrency_slot", "free_concurrency_slot_for_step", "free_concurrency_slots_for_run")


class _InterProcessLock:
    """An exclusive `flock` on one file, re-entrant within a process (one pool method may call another)."""

    def __init__(self, path: Path):
        self._path = path
        self._guard = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextmanager
    def held(self):
        with self._guard:
            if self._depth == 0:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    os.close(self._fd)
                    self._fd = None


def _under_pool_lock(name: str):
    inherited = getattr(ConsolidatedSqliteEventLogStorage, name)

    @functools.wraps(inherited)
    def method(self, *args, **kwargs):
        with self._pool_lock.held():
            return inherited(self, *args, **kwargs)

    return method


class PoolSafeSqliteEventLogStorage(ConsolidatedSqliteEventLogStorage):
    """`ConsolidatedSqliteEventLogStorage` (configured the same way: ``base_dir``) whose pool slot claims, releases and
    limit changes are atomic across processes."""

    def __init__(self, base_dir, inst_data=None):
        super().__init__(base_dir, inst_data=inst_data)
        self._pool_lock = _InterProcessLock(Path(self._base_dir) / LOCK_FILE)


for _name in POOL_WRITES:
    setattr(PoolSafeSqliteEventLogStorage, _name, _under_pool_lock(_name))
