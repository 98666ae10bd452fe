"""The artifact IO manager's marker (`artifact.json`, which class loads a directory) is part of the generation it
describes: a save that dies before it leaves the directory as it was, and a directory without one (what the old save
could leave) is read in one sentence naming it and the asset to materialize (issue #29)."""
from __future__ import annotations

import contextlib
import json
import re

import dagster as dg
import pytest

from regime_platform.defs.partitions import ticker_partitions
from regime_platform.defs.resources import ArtifactIOManager
from regime_platform.storage import files
from regime_platform.storage.files import GENERATION_POINTER, current_generation, write_json_atomic
from regime_platform.storage.reports import Report
from regime_platform_tests.conftest import ticker_instance

MARKER = "artifact.json"  # the IO manager's marker: which class loads the directory
REPORT_CLASS = {"class": "regime_platform.storage.reports:Report"}


def save(manager: ArtifactIOManager, report: Report, ticker: str = "SPY") -> None:
    """What the IO manager does with the backtest asset's output for ``ticker``'s partition."""
    instance = ticker_instance(ticker)
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        with dg.build_output_context(asset_key=dg.AssetKey("backtest"), partition_key=ticker, instance=instance,
                                     asset_partitions_def=ticker_partitions) as context:  # closed: no stray resources
            manager.handle_output(context, report)


def load(manager: ArtifactIOManager, *tickers: str):
    """What a downstream asset receives for the backtest's partitions ``tickers`` (one: the object; several: a dict)."""
    instance = ticker_instance(*tickers)
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        with dg.build_input_context(asset_key=dg.AssetKey("backtest"), partition_key=tickers[0] if len(tickers) == 1
                                    else None, instance=instance, asset_partitions_def=ticker_partitions,
                                    asset_partition_key_range=dg.PartitionKeyRange(tickers[0], tickers[-1])) as context:
            return manager.load_input(context)


def one_sentence(message: str) -> bool:
    return "\n" not in message and message.endswith(".") and ". " not in message


@contextlib.contextmanager
def dies_writing(name: str):
    """The process dies as it begins writing the file ``name`` (every atomic write of the platform goes through
    storage.files.atomic_path), after every file before it was written."""
    honest = files.atomic_path

    @contextlib.contextmanager
    def dying(path):
        if str(path).endswith(f"/{name}"):
            raise KeyboardInterrupt(f"killed before {name}")
        with honest(path) as tmp:
            yield tmp

    files.atomic_path = dying
    try:
        yield
    finally:
        files.atomic_path = honest


def test_a_first_save_that_dies_before_its_marker_leaves_nothing_half_saved(tmp_path):
    """The marker was written after the generation was made current: a kill in between on a directory's first save
    left a current report without it, which a read of every ticker skipped and a read of that ticker failed on with a
    raw FileNotFoundError. Now the marker is a file of the generation, current with it or not at all."""
    manager = ArtifactIOManager(base_dir=str(tmp_path))
    directory = tmp_path / "backtest" / "SPY"
    save(manager, Report(documents={"backtest": {"sharpe": 0.3}}), "QQQ")  # another ticker, whole
    report = Report(documents={"backtest": {"sharpe": 0.41}})
    with dies_writing(MARKER), pytest.raises(KeyboardInterrupt):
        save(manager, report)
    assert not (directory / GENERATION_POINTER).exists()  # nothing current: no report without its marker
    assert list(directory.glob("generation-*")) == []  # and the half-written generation is gone
    with pytest.raises(FileNotFoundError) as refused:
        load(manager, "SPY")
    message = str(refused.value)
    assert one_sentence(message), message
    assert message.startswith(f"{directory} holds no saved artifact") and message.endswith(
        "materialize backtest for SPY.")
    assert list(load(manager, "QQQ", "SPY")) == ["QQQ"]  # a read of every ticker skips it, as before
    save(manager, report)  # the re-run completes
    assert load(manager, "SPY") == report
    assert (current_generation(directory) / MARKER).exists() and not (directory / MARKER).exists()


def test_a_later_save_that_dies_before_its_marker_leaves_the_previous_artifact_current(tmp_path):
    manager = ArtifactIOManager(base_dir=str(tmp_path))
    first, second = Report(documents={"backtest": {"sharpe": 0.41}}), Report(documents={"backtest": {"sharpe": -1.0}})
    save(manager, first)
    with dies_writing(MARKER), pytest.raises(KeyboardInterrupt):
        save(manager, second)
    assert load(manager, "SPY") == first
    assert len(list((tmp_path / "backtest" / "SPY").glob("generation-*"))) == 1


def test_a_directory_left_without_its_marker_is_refused_in_one_sentence_naming_it(tmp_path):
    """What a kill after the save and before the marker left with the old IO manager: a current generation, no
    marker. Reading that ticker said `[Errno 2] No such file or directory: '…/artifact.json'`."""
    manager = ArtifactIOManager(base_dir=str(tmp_path))
    directory = tmp_path / "backtest" / "SPY"
    Report(documents={"backtest": {"sharpe": 0.41}}).save(directory)  # the generation, made current; no marker
    with pytest.raises(FileNotFoundError, match=rf"^{re.escape(str(directory))} holds no saved artifact \(no "
                                                rf"{MARKER} in its current generation.*; materialize backtest for "
                                                r"SPY\.$") as refused:
        load(manager, "SPY")
    assert one_sentence(str(refused.value))
    save(manager, Report(documents={"backtest": {"sharpe": 0.3}}), "QQQ")
    assert list(load(manager, "QQQ", "SPY")) == ["QQQ"]  # a read of every ticker skips it


def test_a_marker_saved_beside_the_generations_still_reads_and_the_next_save_moves_it_in(tmp_path):
    """Directories saved before the marker moved into the generation keep it beside them."""
    manager = ArtifactIOManager(base_dir=str(tmp_path))
    directory = tmp_path / "backtest" / "SPY"
    old = Report(documents={"backtest": {"sharpe": 0.41}})
    old.save(directory)
    write_json_atomic(directory / MARKER, REPORT_CLASS)  # the old IO manager's marker
    assert load(manager, "SPY") == old
    new = Report(documents={"backtest": {"sharpe": 0.5}})
    save(manager, new)
    assert load(manager, "SPY") == new
    assert json.loads((current_generation(directory) / MARKER).read_text()) == REPORT_CLASS
    assert not (directory / MARKER).exists()  # superseded by the generation's own
