"""`regime-platform evaluation`: every strategy with its interval and the verdict, read from a real evaluation."""
from __future__ import annotations

import json
import re

import duckdb
import numpy as np
import polars as pl
import pytest
from arch.data import sp500

from regime_platform import cli
from regime_platform import storage as wh
from regime_platform.evaluation import backtest, metrics, paired
from regime_platform.modeling.targets_version import scope_for
from regime_platform.settings import Settings


@pytest.fixture
def evaluated_dir(tmp_path, monkeypatch):
    """The S&P 500 sample 2010–2018, two hand-made forecasters and the baselines, evaluated by the real code."""
    monkeypatch.setenv("REGIME_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    frame = sp500.load()
    prices = pl.DataFrame({"date": [d.date() for d in frame.index], "adj_close": frame["Adj Close"].to_numpy()})
    prices = prices.filter(pl.col("date").dt.year() >= 2010)
    dates = prices["date"].to_list()
    returns = np.diff(np.log(prices["adj_close"].to_numpy()), prepend=np.nan)
    vol = pl.Series(returns).rolling_std(20).fill_null(0.0).to_numpy()
    truth = (vol > np.nanmedian(vol)).astype(int)  # turbulent when the 20-session volatility is high
    h, n = 5, len(dates) - 5
    rows = []
    for model, predicted in {"vol_rule": truth[:n], "majority": np.zeros(n, int), "persistence": truth[:n],
                             "noisy": np.where(np.random.default_rng(0).random(n) < 0.3, 1 - truth[:n], truth[:n])}.items():
        rows.append(pl.DataFrame({"model": model, "fold": [0 if d.year < 2015 else 1 for d in dates[:n]],
                                  "as_of": dates[:n], "target_date": dates[h:], "horizon": h,
                                  "predicted_regime": predicted.astype(np.int32),
                                  "probabilities": [[1.0 - p, float(p)] for p in predicted],
                                  "true_regime": truth[h:].astype(np.int32), "known_regime": truth[:n].astype(np.int32)}))
    oos = pl.concat(rows)
    backtests = backtest.backtest_all(oos, prices, {h: 1})
    version = scope_for(Settings.from_env({"REGIME_DATA_DIR": str(tmp_path)}), "SPY").targets_version
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    wh.ensure_schema(con)
    wh.replace_evaluation(con, "model_metrics", "SPY", version, metrics.metrics_table(oos))
    wh.replace_backtest(con, "SPY", version, backtest.backtest_table(backtests),
                        paired.comparison_table(backtests, oos))
    con.close()
    return tmp_path


def test_evaluation_prints_each_strategy_with_its_interval_and_the_verdict(evaluated_dir, capsys):
    assert cli.main(["evaluation"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SPY (jump-h5-") and "90 % intervals: stationary block bootstrap (arch)" in out
    row = next(line for line in out.splitlines() if line.startswith("buy_and_hold"))
    assert re.search(r"buy_and_hold\s+-?\d\.\d\d \[-?\d\.\d\d, -?\d\.\d\d\]\s+-?\d+\.\d% \[", row), row
    assert {"vol_target", "sma_200", "noisy", "vol_rule"} <= {line.split()[0] for line in out.splitlines() if line}
    assert "The best of 2 models by Sharpe is" in out and "on Sharpe by" in out


def test_evaluation_json_and_a_warehouse_without_it(evaluated_dir, capsys, monkeypatch):
    assert cli.main(["evaluation", "--json"]) == 0
    (block,) = json.loads(capsys.readouterr().out)
    strategy = {r["strategy"]: r for r in block["strategies"]}
    assert strategy["buy_and_hold"]["sharpe_lo"] < strategy["buy_and_hold"]["sharpe"] < strategy["buy_and_hold"]["sharpe_hi"]
    monkeypatch.setenv("REGIME_LABELER", "drawdown")  # another targets version: nothing evaluated under it
    assert cli.main(["evaluation"]) == 0
    assert "no backtest of SPY for targets version drawdown-h5-" in capsys.readouterr().out
