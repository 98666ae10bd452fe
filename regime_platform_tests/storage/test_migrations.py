"""A warehouse made before the ticker keys: the ledger and labels kept under their one ticker, the recomputable
model and evaluation tables dropped, each said in one sentence; nothing to do the second time."""
from __future__ import annotations

import duckdb
import pytest

from regime_platform import storage as wh

LEGACY = """
CREATE SCHEMA market;
CREATE TABLE market.ohlcv (date DATE NOT NULL, ticker VARCHAR NOT NULL, open DOUBLE, high DOUBLE, low DOUBLE,
    close DOUBLE, adj_close DOUBLE, volume DOUBLE, source VARCHAR NOT NULL, ingested_at TIMESTAMP NOT NULL,
    PRIMARY KEY (ticker, date));
CREATE TABLE market.regime_labels (date DATE NOT NULL PRIMARY KEY, regime INTEGER NOT NULL, known_regime INTEGER,
    regime_name VARCHAR, labeler VARCHAR NOT NULL, fit_start DATE, fit_end DATE);
CREATE TABLE market.regime_forecasts (as_of DATE NOT NULL, target_date DATE NOT NULL, horizon INTEGER NOT NULL,
    model VARCHAR NOT NULL, predicted_regime INTEGER NOT NULL, probabilities DOUBLE[] NOT NULL,
    model_version VARCHAR NOT NULL, price_source VARCHAR, status VARCHAR NOT NULL, realized_regime INTEGER,
    labels_version VARCHAR, PRIMARY KEY (as_of, model, horizon));
CREATE TABLE market.oos_predictions (model VARCHAR NOT NULL, fold INTEGER, as_of DATE NOT NULL,
    target_date DATE NOT NULL, horizon INTEGER NOT NULL, predicted_regime INTEGER, probabilities DOUBLE[],
    true_regime INTEGER, known_regime INTEGER);
INSERT INTO market.ohlcv VALUES ('2018-12-21', 'SPY', 1, 1, 1, 1, 1, 1, 'sample:^GSPC', now());
INSERT INTO market.regime_labels VALUES ('2018-12-21', 1, 1, 'turbulent', 'jump', NULL, NULL);
INSERT INTO market.regime_forecasts VALUES ('2018-12-21', '2018-12-31', 5, 'lstm', 1, [0.2, 0.8], 'lstm-v',
    'sample:^GSPC', 'scored', 1, 'jump-x');
INSERT INTO market.oos_predictions VALUES ('lstm', 0, '2017-01-03', '2017-01-10', 5, 1, [0.2, 0.8], 1, 1);
"""


def test_a_legacy_warehouse_keeps_its_ledger_under_its_ticker_and_drops_what_is_recomputed(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute(LEGACY)
    assert wh.legacy_tables(con) == ["oos_predictions", "regime_forecasts", "regime_labels"]
    said = wh.upgrade_legacy_tables(con)
    assert len(said) == 3
    assert any(s.startswith("market.oos_predictions predates the ticker and targets-version keys and was dropped")
               for s in said)
    assert any("market.regime_forecasts predates per-ticker keys: its rows were kept and filed under SPY" in s
               for s in said)
    ledger = wh.read_ledger(con)
    assert ledger.select("ticker", "model", "status", "realized_regime").rows() == [("SPY", "lstm", "scored", 1)]
    assert wh.read_regime_labels(con, "SPY")["regime_name"].to_list() == ["turbulent"]
    assert con.execute("SELECT count(*) FROM market.oos_predictions").fetchone()[0] == 0  # recreated, keyed, empty
    assert "targets_version" in [c for (c,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'oos_predictions'").fetchall()]
    assert wh.upgrade_legacy_tables(con) == [] and wh.legacy_tables(con) == []
    con.close()


def test_a_legacy_ledger_of_an_unknown_ticker_is_refused_and_left_as_it_was(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute(LEGACY)
    con.execute("INSERT INTO market.ohlcv VALUES ('2018-12-21', 'QQQ', 1, 1, 1, 1, 1, 1, 'sample:^IXIC', now())")
    with pytest.raises(RuntimeError, match="market.regime_forecasts predates per-ticker keys and market.ohlcv holds 2 "
                                           "tickers, so the ticker its rows were made for is unknown"):
        wh.upgrade_legacy_tables(con)
    assert con.execute("SELECT count(*) FROM market.regime_forecasts").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM market.oos_predictions").fetchone()[0] == 1  # nothing dropped either
    con.close()


def test_a_backtest_without_its_interval_columns_gains_them(tmp_path):
    """A keyed market.backtest written before the intervals: queries naming sharpe_lo would fail on it."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    wh.ensure_schema(con)
    con.execute("DROP TABLE market.backtest")
    con.execute("CREATE TABLE market.backtest (ticker VARCHAR NOT NULL, targets_version VARCHAR NOT NULL, "
                "strategy VARCHAR NOT NULL, horizon INTEGER NOT NULL, sharpe DOUBLE)")
    con.execute("INSERT INTO market.backtest VALUES ('SPY', 'jump-h5-x', 'lstm', 5, 0.5)")
    (said,) = wh.upgrade_legacy_tables(con)
    assert said.startswith("market.backtest gained the column(s)") and "sharpe_lo" in said
    assert con.execute("SELECT sharpe, sharpe_lo FROM market.backtest").fetchall() == [(0.5, None)]
    assert wh.upgrade_legacy_tables(con) == []
    con.close()
