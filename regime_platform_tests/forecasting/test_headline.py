"""Today's answer by hand: the known regime and since when, runner-up, position, source; changes of the forecast."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from regime_platform.forecasting import headline, ledger

D = dt.date
DAYS = [D(2018, 12, 17), D(2018, 12, 18), D(2018, 12, 19), D(2018, 12, 20)]
NAMES = {0: "calm", 1: "turbulent"}


def book(ensemble: list[float], source: str = "sample:^GSPC") -> pl.DataFrame:
    rows = []
    for day, p in zip(DAYS, ensemble):
        for model, probs in (("ensemble", [1 - p, p]), ("majority", [0.8, 0.2]), ("lstm", [0.4, 0.6])):
            rows.append({"ticker": "SPY", "as_of": day, "target_date": ledger.target_session(day, 5), "horizon": 5,
                         "model": model, "predicted_regime": int(probs[1] > 0.5), "probabilities": probs,
                         "model_version": f"{model}-v", "price_source": source, "status": "pending",
                         "realized_regime": None, "labels_version": None, "known_regime": 0,
                         "known_labels_version": "jump-x", "decision_note": None})
    return pl.DataFrame(rows, schema=ledger.LEDGER_SCHEMA)


KNOWN = pl.DataFrame({"date": DAYS, "known_regime": [1, 0, 0, 0]})


def test_the_line_says_everything_in_one_sentence():
    h = headline.headline("SPY", book([0.2, 0.3, 0.6, 0.7]), "ensemble", NAMES, KNOWN, risk_off=1)
    assert h.line() == ("SPY 2018-12-20: known regime calm since 2018-12-18; ensemble forecasts turbulent for "
                        "2018-12-28 (t+5) p=0.70, runner-up calm 0.30; position FLAT (turbulent is the risk-off "
                        "regime); prices: OFFLINE sample: ^GSPC standing in for SPY (the S&P 500 index, bundled, "
                        "ends 2018).")
    calm = headline.headline("SPY", book([0.2, 0.3, 0.6, 0.1], source="yfinance"), "ensemble", NAMES, KNOWN, 1)
    assert calm.position == "long" and calm.line().endswith("position LONG (the risk-off regime is turbulent); "
                                                            "prices: yfinance.")


def test_the_table_puts_the_headline_first_and_baselines_last():
    table = headline.model_table(book([0.2, 0.3, 0.6, 0.7]), NAMES, "ensemble")
    assert table["model"].to_list() == ["ensemble", "lstm", "majority (baseline)"]
    assert table["probability"].to_list() == ["0.70", "0.60", "0.80"]


def test_an_unknown_headline_model_is_one_sentence():
    with pytest.raises(headline.HeadlineError, match=r"^REGIME_HEADLINE_MODEL=cnn has no forecast of SPY for "
                                                     r"2018-12-20: set it to one of ensemble, lstm, majority\.$"):
        headline.headline("SPY", book([0.2] * 4), "cnn", NAMES, KNOWN, 1)


def test_a_change_is_reported_on_the_session_it_happens_only():
    frame = book([0.2, 0.3, 0.6, 0.7])
    (change,) = headline.changes(frame, "ensemble", DAYS, NAMES)
    assert (change["session"], change["previous_session"], change["old_regime"], change["new_regime"],
            change["probability"]) == ("2018-12-19", "2018-12-18", "calm", "turbulent", 0.6)
    assert headline.changes(frame, "ensemble", [DAYS[-1]], NAMES) == []


def test_the_risk_off_regime_is_the_one_with_the_lowest_mean_daily_return():
    prices = pl.DataFrame({"date": DAYS, "adj_close": [100.0, 101.0, 99.0, 98.0]})
    labels = pl.DataFrame({"date": DAYS, "regime": [0, 0, 1, 1]})
    assert headline.risk_off_of(labels, prices) == 1
    assert headline.risk_off_of(labels.with_columns(pl.Series("regime", [1, 1, 0, 0])), prices) == 0
