"""Models against baselines and trading rules: the comparison table and the `beats_baselines` verdict.

Each measure is compared where it fits: macro-F1 against the `majority` baseline (a classifier must beat
guessing the commonest regime); Sharpe and max drawdown against `buy_and_hold`, the 200-day rule `sma_200`
and the `persistence` baseline (acting on a forecast must beat doing nothing clever). The verdict passes when
the best model beats every one of them on Sharpe and `majority` on macro-F1; otherwise it gives one sentence
per baseline not beaten. No Dagster here.
"""
from __future__ import annotations

import math

import polars as pl

from regime_platform.evaluation.backtest import BUY_AND_HOLD, RULES, SMA_200
from regime_platform.evaluation.metrics import is_baseline
from regime_platform.models import BASELINES, MODELS

SHARPE_BENCHMARKS = (BUY_AND_HOLD, SMA_200, "persistence")
F1_BENCHMARK = "majority"
DEEP_MODELS = tuple(name for name, cls in MODELS.items() if cls.kind == "pytorch")  # the sequence models
DEEP_NAMES = {"lstm": "LSTM", "cnn": "CNN"}
# the models on summarized windows the sequence models must reach (the ensemble is built from both kinds)
TABULAR_MODELS = tuple(name for name, cls in MODELS.items() if cls.kind == "scikitlearn" and not cls.composite)
COLUMNS = ("macro_f1", "balanced_accuracy", "sharpe", "max_drawdown", "change_lead_median")


def comparison_table(metrics: pl.DataFrame, backtest_rows: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """One row per model, baseline and rule for `horizon`: kind, macro_f1, balanced_accuracy, sharpe,
    max_drawdown, change_lead_median (NULL where it does not apply). Models first (by Sharpe), then baselines,
    then the rules."""
    pooled = metrics.filter(pl.col("fold").is_null() & (pl.col("horizon") == horizon))
    wide = (pooled.filter(pl.col("metric").is_in(["macro_f1", "balanced_accuracy", "change_lead_median"]))
            .pivot(on="metric", index="model", values="value").rename({"model": "name"}))
    trades = backtest_rows.filter(pl.col("horizon") == horizon).select(
        pl.col("strategy").alias("name"), "sharpe", "max_drawdown")
    table = wide.join(trades, on="name", how="full", coalesce=True)
    for c in COLUMNS:
        if c not in table.columns:
            table = table.with_columns(pl.lit(None, dtype=pl.Float64).alias(c))
    kind = (pl.when(pl.col("name").is_in(list(RULES))).then(pl.lit("rule"))
            .when(pl.col("name").is_in(list(BASELINES))).then(pl.lit("baseline")).otherwise(pl.lit("model")))
    order = pl.when(pl.col("kind") == "model").then(0).when(pl.col("kind") == "baseline").then(1).otherwise(2)
    return (table.with_columns(kind.alias("kind")).select("name", "kind", *COLUMNS)
            .sort(order, pl.col("sharpe").fill_nan(None), descending=[False, True], nulls_last=True))


def _value(table: pl.DataFrame, name: str, column: str) -> float | None:
    row = table.filter(pl.col("name") == name)
    if row.is_empty():
        return None
    value = row[column].item()
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _best(table: pl.DataFrame, column: str) -> tuple[str, float] | None:
    models = table.filter((pl.col("kind") == "model") & pl.col(column).is_not_null() & pl.col(column).is_not_nan())
    if models.is_empty():
        return None
    row = models.sort(column, descending=True).row(0, named=True)
    return row["name"], float(row[column])


def head_to_head(table: pl.DataFrame) -> pl.DataFrame:
    """Each model against each baseline on its measure: 'yes' when the model is better, 'no' otherwise."""
    rows = []
    for name in table.filter(pl.col("kind") == "model")["name"].to_list():
        row = {"model": name}
        pairs = [(F1_BENCHMARK, "macro_f1")] + [(b, m) for b in SHARPE_BENCHMARKS for m in ("sharpe", "max_drawdown")]
        for benchmark, measure in pairs:
            ours, theirs = _value(table, name, measure), _value(table, benchmark, measure)
            label = f"{measure} vs {benchmark}"
            row[label] = "n/a" if ours is None or theirs is None else ("yes" if ours > theirs else "no")
        rows.append(row)
    return pl.DataFrame(rows)


def deep_models_sentence(table: pl.DataFrame) -> str | None:
    """How the sequence models (LSTM, CNN) stand against the best tabular model on the economic test (Sharpe) and
    on macro-F1, by how much, in one sentence — said whether they trail or reach it (None when either side is
    absent)."""
    parts = []
    for measure, label, fmt in (("sharpe", "Sharpe", "{:.2f}"), ("macro_f1", "macro-F1", "{:.3f}")):
        tabular = [(m, v) for m in TABULAR_MODELS if (v := _value(table, m, measure)) is not None]
        deep = [(m, v) for m in DEEP_MODELS if (v := _value(table, m, measure)) is not None]
        if not tabular or not deep:
            continue
        ref_name, ref = max(tabular, key=lambda mv: mv[1])
        said = []
        for m, v in deep:
            gap = v - ref
            how = (f"reaches it ({fmt.format(v)}, {'+' if gap >= 0 else '−'}{fmt.format(abs(gap))})" if gap >= 0
                   else f"trails it by {fmt.format(-gap)} ({fmt.format(v)})")
            said.append(f"the {DEEP_NAMES[m]} {how}")
        parts.append(f"on {label} the best tabular model is {ref_name} ({fmt.format(ref)}): " + ", ".join(said))
    if not parts:
        return None
    return "Sequence models against the tabular ones: " + "; ".join(parts) + "."


def verdict(table: pl.DataFrame) -> tuple[bool, list[str]]:
    """(passed, sentences): one sentence per baseline the best model does not beat, plus the deep-model note."""
    sentences = []
    best_sharpe = _best(table, "sharpe")
    for benchmark in SHARPE_BENCHMARKS:
        theirs = _value(table, benchmark, "sharpe")
        if theirs is None:
            continue
        if best_sharpe is None or best_sharpe[1] <= theirs:
            best = "no model has a Sharpe ratio" if best_sharpe is None else \
                f"the best model, {best_sharpe[0]}, has {best_sharpe[1]:.2f}"
            sentences.append(f"No model beats {benchmark} on Sharpe: {benchmark} has {theirs:.2f}, {best}.")
    best_f1 = _best(table, "macro_f1")
    theirs = _value(table, F1_BENCHMARK, "macro_f1")
    if theirs is not None and (best_f1 is None or best_f1[1] <= theirs):
        best = "no model has a macro-F1" if best_f1 is None else f"the best model, {best_f1[0]}, has {best_f1[1]:.3f}"
        sentences.append(f"No model beats {F1_BENCHMARK} on macro-F1: {F1_BENCHMARK} has {theirs:.3f}, {best}.")
    passed = not sentences
    deep = deep_models_sentence(table)
    if deep:
        sentences.append(deep)
    return passed, sentences


__all__ = ["comparison_table", "head_to_head", "verdict", "deep_models_sentence", "is_baseline"]
