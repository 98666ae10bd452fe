"""SIGKILL during the writes every model and evaluation asset goes through (storage.replace_scoped: fold targets,
out-of-sample rows, metrics, backtest, attributions) and during an artifact file's write (write_bytes_atomic: model
weights, reports, figures). A writer process replaces one scope's rows, generation after generation, and rewrites a
200 KB file; it is killed at random moments. Afterwards the database opens, the scope holds exactly one whole
generation (never none, never two, no duplicate), the other ticker's rows are untouched, and the file is one whole
generation. The materializing assets themselves are killed in regime_platform_tests/test_kill_every_asset.py."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import duckdb
import pytest

ROWS = 200_000  # big enough that most of the writer's time is inside the transaction
WRITER = f"""
import sys, polars as pl, duckdb
from pathlib import Path
from regime_platform import storage as wh
root = Path(sys.argv[1])
con = duckdb.connect(str(root / "warehouse.duckdb"))
wh.ensure_schema(con)
def rows(g):
    return pl.DataFrame({{"model": "m", "horizon": 5, "fold": list(range({ROWS})), "metric": "accuracy",
                          "value": float(g)}})
if not con.execute("SELECT count(*) FROM market.model_metrics").fetchone()[0]:
    for ticker in ("QQQ", "SPY"):
        wh.replace_scoped(con, "model_metrics", rows(-1), {{"ticker": ticker, "targets_version": "v"}})
g = con.execute("SELECT max(value) FROM market.model_metrics WHERE ticker = 'SPY'").fetchone()[0] + 1
print("ready", flush=True)
while True:
    wh.replace_scoped(con, "model_metrics", rows(g), {{"ticker": "SPY", "targets_version": "v"}})
    wh.write_bytes_atomic(root / "artifact.bin", bytes([g % 251]) * 200_000)
    g += 1
"""


@pytest.mark.slow  # 8 kills of a fresh Python: 15-20 s
def test_a_kill_at_any_moment_leaves_one_whole_generation(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = random.Random(29)
    generations = set()
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 1.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:  # opens (WAL replayed or discarded)
            spy = con.execute("SELECT count(*), count(DISTINCT value), count(DISTINCT fold), max(value) "
                              "FROM market.model_metrics WHERE ticker = 'SPY'").fetchone()
            qqq = con.execute("SELECT count(*), min(value), max(value) FROM market.model_metrics "
                              "WHERE ticker = 'QQQ'").fetchone()
        assert spy[:3] == (ROWS, 1, ROWS), spy  # one whole generation: never none, never two mixed
        assert qqq == (ROWS, -1.0, -1.0)
        artifact = tmp_path / "artifact.bin"
        if artifact.exists():
            data = artifact.read_bytes()
            assert len(data) == 200_000 and data.count(data[:1]) == len(data)
        generations.add(spy[3])
    assert len(generations) >= 4  # the writer got through generations between kills: they hit a busy writer
