"""Every forecast-quality candidate of issue 32, from every `bench_forecast_candidates.py` result file, in one table
per label setting: what "the best of N" counts.

    python benchmarks/summarize_forecast_candidates.py            # writes benchmarks/results/forecast_candidates_all.md

A candidate (model + run) measured in several files is listed once; the files agree on it to every printed digit (the
same data, folds, backtest and resampled days), which this script asserts, except where a file says it replaces an
earlier form (REPLACED). Columns: Sharpe [90 %], max drawdown, switches, macro-F1 [90 %], balanced accuracy, and the
paired differences against persistence; sorted by Sharpe. Each file's own SPA p-values account only for its own
candidates; the counts here are the union.
"""
from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
OUTPUT = RESULTS / "forecast_candidates_all.md"
REFERENCES = ("persistence", "jump_signal", "vol_target", "sma_200", "buy_and_hold", "majority")
# (labeler, strategy) → the file whose row replaces an earlier form of the same run: the drawdown `known regime` of
# forecast_candidates.json was one numeric column of the labeler's online label; the per-fold one-hot form is measured
# in forecast_candidates_known_regime.json (gradient boosting equal, the forest and logistic not)
REPLACED = {("drawdown", f"{m} known regime"): "forecast_candidates_known_regime.json"
            for m in ("random_forest", "logistic")}


def _key(row: dict) -> tuple:
    return tuple(None if row.get(k) is None else round(row[k], 3)
                 for k in ("sharpe", "sharpe_lo", "sharpe_hi", "max_drawdown", "macro_f1", "macro_f1_lo", "macro_f1_hi"))


def collect() -> dict[str, dict[str, tuple[str, dict]]]:
    """labeler → strategy → (file, row), every result file read in name order."""
    out: dict[str, dict[str, tuple[str, dict]]] = {}
    for path in sorted(RESULTS.glob("forecast_candidates*.json")):
        for setting in json.loads(path.read_text())["settings"]:
            rows = out.setdefault(setting["labeler"], {})
            for row in setting["table"]:
                name, kept = row["strategy"], rows.get(row["strategy"])
                if REPLACED.get((setting["labeler"], name)) == path.name or kept is None:
                    rows[name] = (path.name, row)
                elif REPLACED.get((setting["labeler"], name)) != kept[0]:
                    assert _key(kept[1]) == _key(row), f"{setting['labeler']} {name}: {kept[0]} and {path.name} differ"
    return out


def _f(v: float | None, fmt: str) -> str:
    return "–" if v is None else fmt.format(v).replace("-", "−")


def _versus(row: dict, metric: str, fmt: str) -> str:
    d = row.get("versus", {}).get(f"{metric} vs persistence")
    return "–" if not d else f"{_f(d['difference'], fmt)} [{_f(d['ci_low'], fmt)}, {_f(d['ci_high'], fmt)}]"


def table(labeler: str, rows: dict[str, tuple[str, dict]]) -> list[str]:
    candidates = [n for n in rows if n not in REFERENCES]
    by_sharpe = max(candidates, key=lambda n: rows[n][1]["sharpe"])
    by_f1 = max(candidates, key=lambda n: rows[n][1]["macro_f1"] or -1)
    lines = [f"#### {labeler}: {len(candidates)} candidates (best by Sharpe: {by_sharpe}; by macro-F1: {by_f1})", "",
             "| strategy | Sharpe [90 %] | max drawdown | switches | macro-F1 [90 %] | balanced acc. | "
             "Sharpe − persistence [90 %] | macro-F1 − persistence [90 %] | file |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in sorted(rows, key=lambda n: -rows[n][1]["sharpe"]):
        source, r = rows[name]
        f1 = "–" if r.get("macro_f1") is None else (f"{_f(r['macro_f1'], '{:.3f}')} [{_f(r['macro_f1_lo'], '{:.3f}')}, "
                                                     f"{_f(r['macro_f1_hi'], '{:.3f}')}]")
        lines.append(f"| {name} | {_f(r['sharpe'], '{:.2f}')} [{_f(r['sharpe_lo'], '{:.2f}')}, "
                     f"{_f(r['sharpe_hi'], '{:.2f}')}] | {_f(r['max_drawdown'] * 100, '{:.1f}')} % | {r['switches']} | "
                     f"{f1} | {_f(r.get('balanced_accuracy'), '{:.3f}')} | {_versus(r, 'sharpe', '{:+.2f}')} | "
                     f"{_versus(r, 'macro_f1', '{:+.3f}')} | {source.removeprefix('forecast_candidates').removesuffix('.json') or '(first)'} |")
    return lines + [""]


def render(found: dict[str, dict[str, tuple[str, dict]]]) -> str:
    return "\n".join(line for labeler in ("drawdown", "jump") for line in table(labeler, found[labeler]))


def main() -> None:
    text = render(collect())
    OUTPUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
