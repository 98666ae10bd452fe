"""A report (an evaluation or explainability asset's documents and figures) whose file was truncated or edited after
it was written is refused in one sentence naming the file, never half-read."""
from __future__ import annotations

import pytest

from regime_platform.figures import plt, render  # the Agg backend, set once there
from regime_platform.storage.reports import Report


@pytest.fixture
def saved(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    report = Report(documents={"backtest": {"sharpe": 0.41, "trades": list(range(50))}},
                    figures={"equity_curves": render(fig)})
    report.save(tmp_path)
    return tmp_path, report


def test_a_whole_report_loads_as_saved(saved):
    directory, report = saved
    assert Report.load(directory) == report


@pytest.mark.parametrize("name, cut", [("backtest.json", 0.5), ("report.json", 0.5), ("backtest.json", 0.0)])
def test_a_truncated_document_is_refused_in_one_sentence(saved, name, cut):
    directory, _ = saved
    path = directory / name
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ValueError) as refused:
        Report.load(directory)
    message = str(refused.value)
    assert message.startswith(f"{path} is not whole JSON") and message.endswith("re-materialize the asset that "
                                                                                "writes it.")


@pytest.mark.parametrize("damage", ["truncated", "replaced"])
def test_a_damaged_figure_is_refused_in_one_sentence(saved, damage):
    directory, _ = saved
    path = directory / "equity_curves.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"<html>not a figure</html>")
    with pytest.raises(ValueError, match=r"equity_curves.png is not a whole PNG .*re-materialize the asset"):
        Report.load(directory)
