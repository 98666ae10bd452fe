"""SIGKILL the materializing process at random moments, fifty times, spread over every asset that writes (DESIGN §4,
issue #29): ohlcv, macro and features (a month's increment), the labels, the fold targets, every model, the
evaluation, the explanations, the forecast ledger and its scoreboard.

A data dir holds the whole pipeline through 2018-11-30 (a reduced configuration). Then, asset by asset in pipeline
order, with December's sessions added: the asset is materialized on copies of that data dir and each copy's process
is killed at a random moment of the asset's run; afterwards the warehouse opens, every table is exactly as it was
before the run or exactly as the uninterrupted run leaves it (never half-written, no row twice), every artifact file is
whole and every artifact directory loads (a model or a report as one generation, storage.publish_generation; a
report's files checked against the SHA-256 in its index); then a re-run on the killed copy completes and stores what
the uninterrupted run stored. The runs are forked from a server that imported the platform once (a fresh
Python per kill would spend most of its time importing)."""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import re
import shutil
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from regime_platform.defs.evaluation.assets import backtest, model_comparison, model_metrics, regime_change_timing
from regime_platform.defs.explainability.assets import (
    attribution_agreement,
    permutation_importance,
    regime_profiles,
    sequence_attributions,
)
from regime_platform.defs.features.assets import features
from regime_platform.defs.forecasting.assets import forecast_scoreboard, regime_forecasts
from regime_platform.defs.ingestion.assets import ohlcv
from regime_platform.defs.ingestion.macro import macro
from regime_platform.defs.labels.assets import regime_labels
from regime_platform.defs.modeling.assets import model_assets, walk_forward_targets
from regime_platform.defs.resources import MARKER, ArtifactIOManager, marker
from regime_platform.storage.files import GENERATION_POINTER, current_generation, read_json
from regime_platform.storage.reports import read_png
from regime_platform_tests.conftest import platform_resources, ticker_instance

SETTINGS = dict(epochs=2, max_folds=1, inner_validation=False, settle_sessions=2)  # December scores November's rows
ASSETS = [ohlcv, macro, features, regime_labels, walk_forward_targets, *model_assets, model_metrics,
          regime_change_timing, backtest, model_comparison, sequence_attributions, permutation_importance,
          attribution_agreement, regime_profiles, regime_forecasts, forecast_scoreboard]
BY_NAME = {a.key.to_user_string(): a for a in ASSETS}
HISTORY = ("2012-01-03", "2018-11-30")
GENERATION = re.compile(r"generation-[^/]+")  # a model's or report's generation directory, named at random
INCREMENT = ("2018-12-03", "2018-12-31")
# the writers in pipeline order (an ensemble after its members), each killed twice; the ones that write most, thrice
ORDER = ["ohlcv", "macro", "features", "regime_labels", "walk_forward_targets", "logistic_model",
         "random_forest_model", "gradient_boosting_model", "lstm_model", "cnn_model", "majority_model", "persistence_model", "ensemble_model",
         "model_metrics", "regime_change_timing", "backtest", "model_comparison", "sequence_attributions",
         "permutation_importance", "attribution_agreement", "regime_profiles", "regime_forecasts",
         "forecast_scoreboard"]
KILLS = {name: 3 if name in ("ohlcv", "features", "walk_forward_targets", "regime_forecasts") else 2
         for name in ORDER}


def _run_kwargs(name: str, first: str, last: str) -> dict:
    partitions = BY_NAME[name].partitions_def
    if name == "forecast_scoreboard":
        return {}
    if name == "regime_forecasts":
        return {"partition_key": last}
    if isinstance(partitions, dg.DynamicPartitionsDefinition):
        return {"partition_key": "SPY"}
    return {"tags": {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}}


def _materialize(root: str, names: list[str], first: str, last: str, log: str) -> None:
    """In a forked child: materialize ``names`` one after another on data dir ``root``; exit 1 on a failure."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    resources = platform_resources(Path(root), **SETTINGS)
    for name in names:
        result = dg.materialize(ASSETS, selection=[BY_NAME[name].key], resources=resources,
                                instance=ticker_instance("SPY"), raise_on_error=False,
                                **_run_kwargs(name, first, last))
        if not result.success:
            os._exit(1)
    os._exit(0)


@pytest.fixture(scope="module")
def server():
    """Fork from a process that imported the platform and nothing else: no thread pool of polars, DuckDB or torch
    exists in it when it forks."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["regime_platform_tests.test_kill_every_asset"])
    return context


def _start(server, root: Path, names: list[str], window: tuple[str, str]):
    proc = server.Process(target=_materialize, args=(str(root), names, *window, str(root.parent / "runs.log")))
    proc.start()
    return proc


def _run(server, root: Path, names: list[str], window: tuple[str, str]) -> float:
    began = time.perf_counter()
    proc = _start(server, root, names, window)
    proc.join()
    assert proc.exitcode == 0, f"{names} failed on {root}: see {root.parent / 'runs.log'}"
    return time.perf_counter() - began


def tables(root: Path) -> dict[str, list[str]]:
    """Every table's rows (timestamps of ingestion left out: a re-run stamps its own), sorted: opening the file
    read-write replays or discards what a killed writer left in the WAL."""
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        names = [n for (n,) in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = 'market' ORDER BY 1").fetchall()]
        out = {}
        for name in names:
            columns = [c for c, kind in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'market' "
                "AND table_name = ? ORDER BY ordinal_position", [name]).fetchall() if not kind.startswith("TIMESTAMP")]
            rows = con.execute(f"SELECT {', '.join(columns)} FROM market.{name}").fetchall()
            out[name] = sorted(map(repr, rows))
    return out


def artifact_digests(root: Path) -> dict[str, str]:
    """Every current artifact file's SHA-256 by its path, a generation directory by its place rather than its random
    name (the same files saved again are no change); the earlier generations a directory keeps for the UI's links are
    not what it loads, so they are left out."""
    def current(p: Path) -> bool:
        return not GENERATION.fullmatch(p.parent.name) or current_generation(p.parent.parent) == p.parent

    return {GENERATION.sub("generation-…", p.relative_to(root).as_posix()): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "artifacts").rglob("*")) if p.is_file() and p.name != GENERATION_POINTER
            and current(p)}


def artifact_problems(root: Path) -> list[str]:
    """Files that are not whole (JSON that does not parse, a PNG without its end) and artifact directories that do
    not load as one generation (the IO manager checks each model file against the checksums saved with it)."""
    problems = []
    for path in sorted((root / "artifacts").rglob("*")):
        if not path.is_file() or path.name.startswith("."):  # a killed write's temporary file: never read
            continue
        read = {".json": read_json, ".png": read_png}.get(path.suffix)
        try:
            if read:
                read(path)
        except ValueError as exc:  # the platform's own refusal of a file that is not whole
            problems.append(str(exc))
    # the marker sits in a generation (or, saved before that, beside the generations): load each directory whose
    # current generation has one (a generation a killed first save left, never made current, holds nothing to load)
    directories = {m.parent.parent if GENERATION.fullmatch(m.parent.name) else m.parent
                   for m in (root / "artifacts").rglob(MARKER)}
    for directory in sorted(d for d in directories if marker(d) is not None):
        try:
            ArtifactIOManager._load(directory)
        except Exception as exc:  # noqa: BLE001 - any refusal is the finding
            problems.append(f"{directory.relative_to(root)}: {exc}")
    return problems


@pytest.fixture(scope="module")
def pipeline(server, tmp_path_factory):
    root = tmp_path_factory.mktemp("kills") / "base"
    root.mkdir()
    _run(server, root, ["ohlcv", "macro", "features"], HISTORY)
    _run(server, root, [n for n in ORDER if n not in ("ohlcv", "macro", "features")], HISTORY)
    return root


def test_the_kills_cover_every_writing_asset_fifty_times():
    """A model asset added to the registry joins the kills (regime_forecasts needs every model's artifact)."""
    assert sorted(ORDER) == sorted(BY_NAME) and sum(KILLS.values()) == 50


@pytest.mark.slow  # about 6 minutes on 2 cores: 23 assets, 50 kills, each asset run uninterrupted twice
def test_fifty_kills_over_every_writing_asset_lose_nothing(server, pipeline):
    rng = random.Random(29)
    base, work = pipeline, pipeline.parent
    assert artifact_problems(base) == []
    kills, alive_at_kill, findings = 0, 0, []
    for name in ORDER:
        before, files_before = tables(base), artifact_digests(base)
        after_dir = work / f"{name}-after"
        shutil.copytree(base, after_dir)
        seconds = _run(server, after_dir, [name], INCREMENT)
        after = tables(after_dir)
        changed = [t for t in after if after[t] != before.get(t)] + [
            f for f, digest in artifact_digests(after_dir).items() if files_before.get(f) != digest]
        assert changed, f"{name} stored nothing new: the kills would prove nothing"
        for k in range(KILLS[name]):
            killed = work / f"{name}-kill{k}"
            shutil.copytree(base, killed)
            proc = _start(server, killed, [name], INCREMENT)
            time.sleep(rng.uniform(0.1, 1.0) * seconds)
            alive_at_kill += proc.is_alive()
            proc.kill()  # SIGKILL: no handler, no cleanup
            proc.join()
            kills += 1
            state = tables(killed)
            torn = [t for t in state if state[t] not in (before.get(t), after.get(t))]
            findings += [f"{name}, kill {k}: table {t} is neither as before nor as after" for t in torn]
            findings += [f"{name}, kill {k}: {p}" for p in artifact_problems(killed)]
            if k < KILLS[name] - 1:
                shutil.rmtree(killed)
        _run(server, killed, [name], INCREMENT)  # the re-run after the last kill completes …
        assert tables(killed) == after, f"re-running {name} after a kill stored other rows than an uninterrupted run"
        assert artifact_problems(killed) == []  # … and leaves every artifact whole
        shutil.rmtree(killed)
        shutil.rmtree(base)
        after_dir.rename(base)  # the next asset starts from this one's result
    print(f"{kills} kills, {alive_at_kill} of them while the run was still going")
    assert kills == 50
    assert alive_at_kill >= 40, f"only {alive_at_kill} of 50 kills found the run still going"
    assert findings == [], "\n".join(findings)
