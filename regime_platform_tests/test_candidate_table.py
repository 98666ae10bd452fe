"""The table of every forecast-quality candidate (benchmarks/summarize_forecast_candidates.py) is the one the committed
result files make, and a candidate two files disagree on is refused rather than listed once."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _summarizer():
    spec = importlib.util.spec_from_file_location("summarize_forecast_candidates",
                                                  BENCHMARKS / "summarize_forecast_candidates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_table_is_the_one_the_result_files_make():
    s = _summarizer()
    found = s.collect()
    assert (BENCHMARKS / "results" / "forecast_candidates_all.md").read_text() == s.render(found)
    counts = {lab: sum(n not in s.REFERENCES for n in rows) for lab, rows in found.items()}
    assert counts == {"drawdown": 54, "jump": 63}


def test_a_candidate_two_files_disagree_on_is_refused(tmp_path, monkeypatch):
    s = _summarizer()
    for path in (BENCHMARKS / "results").glob("forecast_candidates*.json"):
        shutil.copy(path, tmp_path / path.name)
    planted = json.loads((tmp_path / "forecast_candidates_macro.json").read_text())
    row = next(r for r in planted["settings"][0]["table"] if r["strategy"].endswith(" default"))
    row["sharpe"] += 0.05  # a shared candidate, changed in one file
    (tmp_path / "forecast_candidates_macro.json").write_text(json.dumps(planted))
    monkeypatch.setattr(s, "RESULTS", tmp_path)
    with pytest.raises(AssertionError, match=rf"{row['strategy']}: forecast_candidates.json and "
                                             "forecast_candidates_macro.json differ"):
        s.collect()
