"""What `regime-platform run` echoes of a materialization's log: each source failure said once."""
from __future__ import annotations

import datetime as dt

from regime_platform.ingestion.sources import build_chain
from regime_platform.runs import shown
from regime_platform_tests.ingestion.test_source_faults import DNS, offline_yfinance


def test_a_failure_the_planner_said_is_not_echoed_again_from_the_run():
    # the planner's warnings come from the chain's last_sessions, the asset's from its fetch_many: the same sentence
    chain = build_chain("auto", yf_download=offline_yfinance({"SPY": DNS}), stooq_api_key=None)
    _, _, planned = chain.last_sessions(["SPY"])["SPY"]
    fetched = chain.fetch("SPY", dt.date(2018, 6, 1), dt.date(2018, 6, 5)).warnings
    assert planned == fetched and len(planned) == 2  # yfinance offline, Stooq without a key
    prefix = "2026-12-02 20:38:39 +0000 - dagster - WARNING - __ASSET_JOB - 7df7e959 - ohlcv - source fallback for SPY: "
    for warning in fetched:
        assert not shown(prefix + warning + "\n", said=planned)
        assert shown(prefix + warning + "\n")  # not said before: echoed
    sample = prefix.replace("source fallback for SPY: ", "serving the bundled SAMPLE: the S&P 500 index stands in")
    assert shown(sample, said=planned)
    assert not shown("2026-12-02 20:38:39 +0000 - dagster - DEBUG - __ASSET_JOB - x - ohlcv - STEP_OUTPUT - y")
    assert shown("2026-12-02 20:38:39 +0000 - dagster - DEBUG - __ASSET_JOB - x - ohlcv - STEP_SUCCESS - y")


def test_a_message_is_echoed_or_hidden_as_a_whole_with_its_table_or_traceback():
    from regime_platform.runs import echoed

    head = "2026-12-03 06:02:00 +0000 - dagster - {} - __ASSET_JOB - x - macro - "
    log = [head.format("DEBUG") + "preview (this run's 4779 sessions):\n", "| date | series |\n", "|---|---|\n",
           "| 2014-01-07 | VIXCLS |\n", head.format("INFO") + "macro 1999-12-03 … 2018-12-31\n",
           head.format("ERROR") + "Error occurred while executing op \"macro\":\n", "  File \"macro.py\", line 3\n",
           "\n", "[regime-platform] step 2/7\n"]
    assert list(echoed(log)) == log[4:]  # the DEBUG table is hidden whole, the error shown with its traceback
