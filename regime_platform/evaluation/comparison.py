"""Models against baselines and trading rules: the comparison table and the `beats_baselines` verdict.

The verdict stands on the paired intervals of `market.baseline_comparison` (paired.py), not on point estimates:
the best model (by Sharpe, among N candidates — the count is said) passes only when its paired 90 % interval
lies above zero against every baseline and rule on Sharpe (buy_and_hold, sma_200, vol_target, jump_signal,
persistence, majority) and against persistence and majority on macro-F1 and balanced accuracy. Otherwise one
sentence per reference: "ahead by x [lo, hi]: not distinguishable at 90 %", or "behind by x [lo, hi]".
Hansen's SPA (intervals.py), computed by the backtest, says whether the best of N survives its own selection.
No Dagster here.
"""
from __future__ import annotations

import math

import polars as pl

from regime_platform.evaluation.backtest import RULES
from regime_platform.evaluation.metrics import is_baseline
from regime_platform.models import BASELINES, MODELS

DEEP_MODELS = tuple(name for name, cls in MODELS.items() if cls.kind == "pytorch")  # the sequence models
DEEP_NAMES = {"lstm": "LSTM", "cnn": "CNN"}
# the models on summarized windows the sequence models must reach (the ensemble is built from both kinds)
TABULAR_MODELS = tuple(name for name, cls in MODELS.items() if cls.kind == "scikitlearn" and not cls.composite)
COLUMNS = ("macro_f1", "macro_f1_lo", "macro_f1_hi", "balanced_accuracy", "balanced_accuracy_lo",
           "balanced_accuracy_hi", "sharpe", "sharpe_lo", "sharpe_hi", "max_drawdown", "max_drawdown_lo",
           "max_drawdown_hi", "change_lead_median", "change_called_share")
METRICS_SHOWN = ("macro_f1", "macro_f1_lo", "macro_f1_hi", "balanced_accuracy", "balanced_accuracy_lo",
                 "balanced_accuracy_hi", "change_lead_median", "change_called_share")
CLASSIFICATION_REFERENCES = ("persistence", "majority")
LEVEL_TEXT = "90 %"


def comparison_table(metrics: pl.DataFrame, backtest_rows: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """One row per model, baseline and rule for `horizon`: kind, macro_f1, balanced_accuracy, sharpe,
    max_drawdown, change_lead_median (NULL where it does not apply). Models first (by Sharpe), then baselines,
    then the rules."""
    pooled = metrics.filter(pl.col("fold").is_null() & (pl.col("horizon") == horizon))
    wide = (pooled.filter(pl.col("metric").is_in(list(METRICS_SHOWN)))
            .pivot(on="metric", index="model", values="value").rename({"model": "name"}))
    trades = backtest_rows.filter(pl.col("horizon") == horizon).select(
        pl.col("strategy").alias("name"), "sharpe", "sharpe_lo", "sharpe_hi", "max_drawdown", "max_drawdown_lo",
        "max_drawdown_hi")
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


def _signed(v: float, fmt: str) -> str:
    return ("+" if v >= 0 else "−") + fmt.format(abs(v))


def interval_text(row: dict, fmt: str = "{:.2f}") -> str:
    """'+0.12 [−0.05, +0.30]' for one baseline_comparison row."""
    if row["difference"] is None:
        return "n/a"
    if row["ci_low"] is None or row["ci_high"] is None:
        return _signed(row["difference"], fmt)
    return f"{_signed(row['difference'], fmt)} [{_signed(row['ci_low'], fmt)}, {_signed(row['ci_high'], fmt)}]"


def head_to_head(versus: pl.DataFrame, metrics: tuple[str, ...] = ("sharpe", "macro_f1")) -> pl.DataFrame:
    """Each model (rows) against each baseline and rule: the paired difference and its interval, per measure."""
    if versus.is_empty():
        return pl.DataFrame()
    rows = []
    for model in sorted(versus["model"].unique().to_list()):
        row = {"model": model}
        for r in versus.filter((pl.col("model") == model) & pl.col("metric").is_in(list(metrics))).sort(
                "metric", "baseline").iter_rows(named=True):
            row[f"{r['metric']} vs {r['baseline']}"] = interval_text(r, "{:.3f}" if r["metric"] != "sharpe" else "{:.2f}")
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


def judged_pairs(versus: pl.DataFrame, best: str) -> list[dict]:
    """The pairs the verdict stands on: the best model against every reference on Sharpe, and against
    persistence and majority on macro-F1 and balanced accuracy."""
    mine = versus.filter(pl.col("model") == best)
    sharpe = mine.filter(pl.col("metric") == "sharpe").sort("baseline")
    classification = mine.filter(pl.col("metric").is_in(["macro_f1", "balanced_accuracy"])
                                 & pl.col("baseline").is_in(list(CLASSIFICATION_REFERENCES))).sort("metric", "baseline")
    return sharpe.to_dicts() + classification.to_dicts()


def pair_sentence(best: str, row: dict) -> tuple[bool, str]:
    """(beaten, sentence) for one pair: beaten only when the whole interval lies above zero."""
    label = {"sharpe": "Sharpe", "macro_f1": "macro-F1", "balanced_accuracy": "balanced accuracy"}[row["metric"]]
    fmt = "{:.2f}" if row["metric"] == "sharpe" else "{:.3f}"
    said = interval_text(row, fmt)
    low, high, d = row["ci_low"], row["ci_high"], row["difference"]
    if d is None:
        return False, f"{best} against {row['baseline']} on {label}: no value to compare."
    if low is not None and low > 0:
        return True, f"{best} is ahead of {row['baseline']} on {label} by {said}."
    if high is not None and high < 0:
        return False, f"{best} is behind {row['baseline']} on {label} by {said}."
    side = "ahead of" if d >= 0 else "behind"
    return False, f"{best} is {side} {row['baseline']} on {label} by {said}: not distinguishable at {LEVEL_TEXT}."


def verdict(table: pl.DataFrame, versus: pl.DataFrame,
            selection: list[str] | None = None) -> tuple[bool, list[str]]:
    """(passed, sentences): which model is best of how many, one sentence per reference it is judged against, the
    data-snooping test's sentences, and the deep-model note. Passes only when every judged interval lies above 0."""
    best = _best(table, "sharpe")
    candidates = table.filter(pl.col("kind") == "model").height
    if best is None or versus.is_empty():
        return False, ["No model has a Sharpe ratio with a paired interval: materialize backtest for this ticker."]
    sentences = [f"The best of {candidates} models by Sharpe is {best[0]} ({best[1]:.2f})."]
    passed = True
    for row in judged_pairs(versus, best[0]):
        beaten, sentence = pair_sentence(best[0], row)
        passed &= beaten
        sentences.append(sentence)
    sentences += list(selection or [])
    deep = deep_models_sentence(table)
    if deep:
        sentences.append(deep)
    return passed, sentences


__all__ = ["comparison_table", "head_to_head", "verdict", "judged_pairs", "pair_sentence", "interval_text",
           "deep_models_sentence", "is_baseline"]
