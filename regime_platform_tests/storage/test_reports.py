"""A report (an evaluation or explainability asset's documents and figures) whose file was truncated or edited after
it was written is refused in one sentence naming the file, never half-read; its files are one generation, so a save
that dies midway leaves the previous report whole; a report saved before generations still loads."""
from __future__ import annotations

import json
import re

import pytest

from regime_platform.figures import plt, render  # the Agg backend, set once there
from regime_platform.storage import reports
from regime_platform.storage.files import current_generation, write_bytes_atomic, write_json_atomic
from regime_platform.storage.reports import INDEX, Report


def figure(*ys: float) -> bytes:
    fig, ax = plt.subplots()
    ax.plot(list(ys))
    return render(fig)


@pytest.fixture
def saved(tmp_path):
    report = Report(documents={"backtest": {"sharpe": 0.41, "trades": list(range(50))}},
                    figures={"equity_curves": figure(1, 2, 3)})
    report.save(tmp_path)
    return tmp_path, report


def one_sentence(message: str) -> bool:
    return "\n" not in message and message.endswith(".") and ". " not in message


def test_a_whole_report_loads_as_saved(saved):
    directory, report = saved
    assert Report.load(directory) == report


def test_the_paths_an_asset_shows_before_the_save_are_where_the_files_land(tmp_path):
    """An asset's metadata names each file before the IO manager saves the report: inside its generation."""
    report = Report(documents={"backtest": {"sharpe": 0.41}}, figures={"equity_curves": figure(1, 2)})
    document, png = report.document_path(tmp_path, "backtest"), report.figure_path(tmp_path, "equity_curves")
    report.save(tmp_path)
    assert document.parent == png.parent == current_generation(tmp_path) != tmp_path
    assert json.loads(document.read_text()) == {"sharpe": 0.41} and png.read_bytes() == report.figures["equity_curves"]
    report.save(tmp_path)  # saved again into the same directory: a new generation, never over the current one
    assert report.figure_path(tmp_path, "equity_curves").parent == current_generation(tmp_path) != png.parent
    assert Report.load(tmp_path) == report and len(list(tmp_path.glob("generation-*"))) == 2
    assert png.read_bytes() == report.figures["equity_curves"]  # the first materialization's link still opens


@pytest.mark.parametrize("name, cut", [("backtest.json", 0.5), (INDEX, 0.5), ("backtest.json", 0.0)])
def test_a_truncated_document_is_refused_in_one_sentence(saved, name, cut):
    directory, _ = saved
    path = current_generation(directory) / name
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ValueError) as refused:
        Report.load(directory)
    message = str(refused.value)
    assert message.startswith(f"{path} is not whole JSON") and message.endswith(
        f"re-materialize the asset that writes {directory}.") and one_sentence(message)


@pytest.mark.parametrize("damage", ["truncated", "replaced"])
def test_a_damaged_figure_is_refused_in_one_sentence(saved, damage):
    directory, _ = saved
    path = current_generation(directory) / "equity_curves.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"<html>not a figure</html>")
    with pytest.raises(ValueError, match=r"equity_curves.png is not a whole PNG .*re-materialize the asset"):
        Report.load(directory)


def test_a_document_edited_in_place_but_still_json_is_refused_in_one_sentence_naming_it(saved):
    """Before, a well-formed but altered backtest.json was read as it was: only malformed files were refused."""
    directory, _ = saved
    path = current_generation(directory) / "backtest.json"
    edited = json.loads(path.read_text()) | {"sharpe": 2.5}
    path.write_text(json.dumps(edited, indent=2) + "\n")
    with pytest.raises(ValueError) as refused:
        Report.load(directory)
    message = str(refused.value)
    assert message.startswith(f"{path} changed since it was written (sha256 ") and one_sentence(message)
    assert message.endswith(f"re-materialize the asset that writes {directory}.")  # the loader knows no asset
    with pytest.raises(ValueError, match=r"changed since it was written .*re-materialize backtest for SPY\.$"):
        Report.load(directory, asset="backtest for SPY")


def test_a_figure_replaced_by_another_whole_png_is_refused(saved):
    directory, _ = saved
    path = current_generation(directory) / "equity_curves.png"
    write_bytes_atomic(path, figure(3, 1, 2))  # a whole PNG, not the one written
    with pytest.raises(ValueError) as refused:
        Report.load(directory)
    message = str(refused.value)
    assert message.startswith(f"{path} changed since it was written (sha256 ") and one_sentence(message)


def test_an_index_stripped_of_its_checksums_is_refused(saved):
    """Deleting the sha256 from a generation's index does not make it pass for an unchecked old-layout report."""
    directory, _ = saved
    path = current_generation(directory) / INDEX
    index = json.loads(path.read_text())
    index.pop("sha256", None)
    path.write_text(json.dumps(index))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))} is not a report's index .*re-materialize"):
        Report.load(directory)


def test_a_save_that_dies_midway_leaves_the_previous_report_whole(saved, monkeypatch):
    """A save wrote file after file into the report's directory, so a kill between two files left the new documents
    beside the old figure and index, loaded without complaint; now a report's files are one generation, made current
    only once all are written."""
    directory, first = saved
    second = Report(documents={"backtest": {"sharpe": -0.2, "trades": [1, 2]}, "notes": {"text": "second"}},
                    figures={"equity_curves": figure(5, 4, 3)})

    def dies(path, data):  # the process dies after the new documents, before the figure
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(reports, "write_bytes_atomic", dies)
    with pytest.raises(KeyboardInterrupt):
        second.save(directory)
    monkeypatch.undo()
    assert Report.load(directory) == first  # the documents, the figure and the index: all the first's
    assert len(list(directory.glob("generation-*"))) == 1  # the half-written one is gone
    second.save(directory)  # and the next save completes
    assert Report.load(directory) == second
    assert len(list(directory.glob("generation-*"))) == 2  # the second's and the first's (kept: the UI links to it)


def test_a_report_saved_before_generations_still_loads_and_the_next_save_replaces_it(tmp_path):
    """Warehouses made before this change hold the files directly in the asset's directory, without checksums."""
    old = Report(documents={"backtest": {"sharpe": 0.41}}, figures={"equity_curves": figure(1, 2, 3)})
    write_json_atomic(tmp_path / "backtest.json", old.documents["backtest"])
    write_bytes_atomic(tmp_path / "equity_curves.png", old.figures["equity_curves"])
    write_json_atomic(tmp_path / INDEX, {"documents": ["backtest"], "figures": ["equity_curves"]})
    write_json_atomic(tmp_path / "artifact.json", {"class": "regime_platform.storage.reports:Report"})  # the IO manager's
    assert Report.load(tmp_path) == old
    new = Report(documents={"backtest": {"sharpe": 0.5}}, figures={"equity_curves": figure(2, 1)})
    new.save(tmp_path)
    assert Report.load(tmp_path) == new
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("generation-")) == [
        "artifact.json", "current.json"]  # the old layout's files are gone, the IO manager's marker stays
    assert Report.saved(tmp_path)


def test_a_missing_report_says_to_materialize(tmp_path):
    assert not Report.saved(tmp_path)
    with pytest.raises(FileNotFoundError, match=rf"{re.escape(str(tmp_path / INDEX))} is missing: materialize backtest for SPY\.$"):
        Report.load(tmp_path, asset="backtest for SPY")


def test_the_io_manager_names_the_asset_and_partition_to_re_materialize(saved):
    from regime_platform.defs.resources import ArtifactIOManager

    directory, report = saved
    write_json_atomic(directory / "artifact.json", {"class": "regime_platform.storage.reports:Report"})
    assert ArtifactIOManager._load(directory, "backtest for SPY") == report
    path = current_generation(directory) / "backtest.json"
    path.write_text(path.read_text().replace("0.41", "0.42"))
    with pytest.raises(ValueError, match=r"changed since it was written .*re-materialize backtest for SPY\.$"):
        ArtifactIOManager._load(directory, "backtest for SPY")


def test_the_last_three_generations_stay_so_the_uis_links_to_them_open(tmp_path):
    """Each save made the older generations vanish, so the link in the metadata of the materialization before the
    latest (and a reader that had resolved the pointer just before a save) found nothing. Now the current generation
    and the two made current before it stay; older ones, and one a killed writer left, are removed at the next save."""
    from regime_platform.storage.files import GENERATIONS_KEPT, kept_generations

    links = []
    for i in range(5):
        report = Report(documents={"backtest": {"sharpe": i}}, figures={"equity_curves": figure(i, i + 1)})
        links.append(report.figure_path(tmp_path, "equity_curves"))
        report.save(tmp_path)
    assert GENERATIONS_KEPT == 3
    assert kept_generations(tmp_path) == [p.parent.name for p in links[::-1][:3]]
    assert [p.exists() for p in links] == [False, False, True, True, True]
    assert json.loads(links[2].parent.joinpath("backtest.json").read_text()) == {"sharpe": 2}
    assert Report.load(tmp_path).documents["backtest"] == {"sharpe": 4}  # the current one is what loads
    left = tmp_path / "generation-killedwriter"  # a writer killed before making its generation current
    left.mkdir()
    (left / "backtest.json").write_text("{")
    Report(documents={"backtest": {"sharpe": 5}}).save(tmp_path)
    assert not left.exists() and [p.exists() for p in links] == [False, False, False, True, True]
    assert len(list(tmp_path.glob("generation-*"))) == 3
