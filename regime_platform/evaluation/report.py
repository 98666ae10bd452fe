"""What `regime-platform evaluation` prints for one ticker: every strategy with its 90 % intervals, and the verdict
on the paired intervals. Frames in, plain rows out; no Dagster, no SQL."""
from __future__ import annotations

import polars as pl

from regime_platform.evaluation import comparison, intervals

METHOD = intervals.method_sentence()


def ticker_evaluation(ticker: str, version: str, horizon: int, trades: pl.DataFrame, metrics: pl.DataFrame,
                      versus: pl.DataFrame) -> dict:
    """{ticker, targets_version, horizon, strategies (rows by Sharpe), verdict (sentences)} of one ticker."""
    at_horizon = pl.col("horizon") == horizon
    trades = trades.filter(at_horizon)
    if trades.is_empty():
        return {"ticker": ticker, "targets_version": version, "horizon": horizon, "strategies": [], "verdict": [
            f"no backtest of {ticker} for targets version {version}: materialize the evaluation group."]}
    table = comparison.comparison_table(metrics, trades, horizon)
    _, sentences = comparison.verdict(table, versus.filter(at_horizon))
    return {"ticker": ticker, "targets_version": version, "horizon": horizon,
            "strategies": trades.drop("horizon").sort("sharpe", descending=True, nulls_last=True).to_dicts(),
            "verdict": sentences}


def interval_cell(row: dict, measure: str, fmt: str) -> str:
    """'0.54 [0.21, 0.88]' (or the value alone when it has no interval)."""
    value, low, high = row.get(measure), row.get(f"{measure}_lo"), row.get(f"{measure}_hi")
    if value is None:
        return "-"
    return fmt.format(value) + ("" if low is None or high is None else f" [{fmt.format(low)}, {fmt.format(high)}]")


def strategy_rows(block: dict) -> list[dict]:
    """One printable row per strategy: Sharpe, annual return and max drawdown each with its interval."""
    return [{"strategy": r["strategy"], "sharpe [90 %]": interval_cell(r, "sharpe", "{:.2f}"),
             "ann_return [90 %]": interval_cell(r, "ann_return", "{:.1%}"),
             "max_drawdown [90 %]": interval_cell(r, "max_drawdown", "{:.1%}"), "switches": r["switches"]}
            for r in block["strategies"]]


__all__ = ["METHOD", "ticker_evaluation", "interval_cell", "strategy_rows"]
