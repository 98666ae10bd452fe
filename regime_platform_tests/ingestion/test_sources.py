"""Each source's success and failure paths, offline: monkeypatched yfinance, a local HTTP server for Stooq."""
from __future__ import annotations

import datetime as dt
import http.server
import threading

import pandas as pd
import polars as pl
import pytest

from regime_platform.ingestion import sources
from regime_platform.ingestion.sources import (
    CsvSource,
    SampleSource,
    SourceChain,
    SourceError,
    StooqSource,
    YFinanceSource,
    build_chain,
    keep_closed_sessions,
)

D0, D1 = dt.date(2018, 6, 1), dt.date(2018, 6, 29)


def yf_frame(sample_bars: pl.DataFrame, start: str, end: str) -> pd.DataFrame:
    """What yfinance 1.7 returns with auto_adjust=False, actions=True, multi_level_index=False."""
    part = sample_bars.filter(pl.col("date").is_between(dt.date.fromisoformat(start),
                                                        dt.date.fromisoformat(end) - dt.timedelta(days=1)))
    pdf = part.to_pandas()
    out = pd.DataFrame({
        "Adj Close": pdf["adj_close"].to_numpy() * 0.9, "Close": pdf["close"].to_numpy(),
        "Dividends": 0.0, "High": pdf["high"].to_numpy(), "Low": pdf["low"].to_numpy(),
        "Open": pdf["open"].to_numpy(), "Stock Splits": 0.0, "Volume": pdf["volume"].to_numpy().astype("int64"),
    }, index=pd.DatetimeIndex(pd.to_datetime(pdf["date"]), name="Date"))
    return out


def test_yfinance_success_asks_for_unadjusted_bars_and_normalizes(sample_bars):
    calls = []

    def download(ticker, **kw):
        calls.append(kw)
        return yf_frame(sample_bars, kw["start"], kw["end"])

    frame = YFinanceSource(download).fetch("SPY", D0, D1)
    assert calls[0]["auto_adjust"] is False and calls[0]["multi_level_index"] is False and calls[0]["actions"]
    assert calls[0]["end"] == "2018-06-30"  # yfinance's end is exclusive
    assert frame.columns == sources.OHLCV_COLUMNS
    assert frame["date"].min() == D0 and frame["date"].max() == D1
    assert frame["adj_close"].to_list() == pytest.approx((frame["close"] * 0.9).to_list())


@pytest.mark.parametrize("answer", ["empty", "none", "raise"])
def test_yfinance_failure_is_a_source_error(answer):
    def download(ticker, **kw):
        if answer == "raise":
            raise ConnectionError("DNS lookup failed")
        return pd.DataFrame() if answer == "empty" else None

    with pytest.raises(SourceError, match="yfinance"):
        YFinanceSource(download).fetch("SPY", D0, D1)


class _Recorded(http.server.BaseHTTPRequestHandler):
    answers: dict = {}
    requests: list = []

    def do_GET(self):
        type(self).requests.append(self.path)
        status, body = type(self).answers["current"]
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def stooq_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorded.requests.clear()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/q/d/l/"
    server.shutdown()
    server.server_close()


STOOQ_CSV = """Date,Open,High,Low,Close,Volume
2018-06-01,270.1,272.0,269.5,271.9,80000000
2018-06-04,272.3,273.1,271.8,273.0,60000000
2018-06-05,273.2,273.9,272.5,273.4,55000000
"""
STOOQ_HTML = "<!DOCTYPE html><html><head><title>Stooq</title></head><body>Get your apikey</body></html>"
STOOQ_LIMIT = "Exceeded the daily hits limit"


def test_stooq_csv_success(stooq_server):
    _, url = stooq_server
    _Recorded.answers["current"] = (200, STOOQ_CSV)
    frame = StooqSource("KEY123", base_url=url).fetch("SPY", D0, D1)
    assert frame["date"].to_list() == [dt.date(2018, 6, 1), dt.date(2018, 6, 4), dt.date(2018, 6, 5)]
    assert frame["adj_close"].to_list() == frame["close"].to_list()  # Stooq's Close serves as both
    assert "s=spy.us" in _Recorded.requests[0] and "apikey=KEY123" in _Recorded.requests[0]


@pytest.mark.parametrize("status,body,needle", [
    (200, STOOQ_HTML, "STOOQ_API_KEY"),
    (200, STOOQ_LIMIT, "daily hits limit"),
    (500, "oops", "HTTP 500"),
    (200, "No data", "no data"),
    (200, "Date,Open\n2018-06-01,1\n", "expected Date, Open, High, Low, Close, Volume"),
])
def test_stooq_failures_say_what_happened(stooq_server, status, body, needle):
    _, url = stooq_server
    _Recorded.answers["current"] = (status, body)
    with pytest.raises(SourceError, match=needle):
        StooqSource("KEY", base_url=url).fetch("SPY", D0, D1)


def test_stooq_without_key_is_skipped_without_a_request(stooq_server):
    _, url = stooq_server
    with pytest.raises(SourceError, match="STOOQ_API_KEY is not set"):
        StooqSource(None, base_url=url).fetch("SPY", D0, D1)
    assert _Recorded.requests == []


def test_stooq_unreachable(tmp_path):
    with pytest.raises(SourceError, match="could not be reached"):
        StooqSource("KEY", base_url="http://127.0.0.1:9/", timeout=2).fetch("SPY", D0, D1)


def test_csv_source_reads_any_case_and_falls_back_to_close(tmp_path):
    path = tmp_path / "spy.csv"
    path.write_text("date,OPEN,High,low,Close,volume\n2018-06-01,1,2,0.5,1.5,100\n2018-06-04,1.5,2,1,1.8,90\n")
    frame = CsvSource(path).fetch("SPY", D0, D1)
    assert frame["adj_close"].to_list() == [1.5, 1.8]


@pytest.mark.parametrize("content,needle", [
    ("Date,Open,High,Low,Close\n2018-06-01,1,2,0.5,1.5\n", "'Volume'"),
    ("Date,Open,High,Low,Close,Volume\n06/01/2018,1,2,0.5,1.5,1\n", "line 2: Date is not YYYY-MM-DD"),
    ("Date,Open,High,Low,Close,Volume\n2018-06-02,1,2,0.5,1.5,1\n", "2018-06-02 is not an XNYS trading session"),
    ("Date,Open,High,Low,Close,Volume\n2018-06-01,1,2,0.5,-1.5,1\n", "non-positive price"),
    ("Date,Open,High,Low,Close,Volume\n2018-06-01,1,2,0.5,x,1\n", "empty or non-numeric"),
])
def test_csv_source_validates(tmp_path, content, needle):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(SourceError, match=needle):
        CsvSource(path).fetch("SPY", D0, D1)


def test_csv_source_needs_a_path(tmp_path):
    with pytest.raises(SourceError, match="REGIME_OHLCV_CSV"):
        CsvSource(None).fetch("SPY", D0, D1)
    with pytest.raises(SourceError, match="does not exist"):
        CsvSource(tmp_path / "nope.csv").fetch("SPY", D0, D1)


def test_sample_is_the_real_index_on_exact_sessions(sample_bars):
    from regime_platform import calendar

    assert sample_bars.height == 5031
    assert sample_bars["date"].to_list() == calendar.sessions("1999-01-04", "2018-12-31")
    with pytest.raises(SourceError, match="covers 1999-01-04…2018-12-31"):
        SampleSource().fetch("SPY", dt.date(2020, 1, 2), dt.date(2020, 2, 1))


def _arch_frame(dataset: str) -> pl.DataFrame:
    """An `arch.data` series as the normalized frame, built independently of SampleSource."""
    import importlib

    raw = importlib.import_module(f"arch.data.{dataset}").load()
    return pl.DataFrame({
        "date": pl.Series([d.date() for d in raw.index], dtype=pl.Date),
        **{c: pl.Series(raw[col].to_numpy(), dtype=pl.Float64) for c, col in
           [("open", "Open"), ("high", "High"), ("low", "Low"), ("close", "Close"), ("adj_close", "Adj Close"),
            ("volume", "Volume")]},
    })


def test_sample_spy_is_the_sp500_unchanged(sample_bars):
    # bit for bit the arch S&P 500 (what SampleSource served for every ticker before QQQ got its own series)
    assert sample_bars.equals(_arch_frame("sp500"))
    assert sample_bars.row(0) == (dt.date(1999, 1, 4), 1229.22998, 1248.810059, 1219.099976, 1228.099976,
                                  1228.099976, 877000000.0)
    assert SampleSource().origin("SPY") == "sample:^GSPC"


def test_sample_qqq_is_the_nasdaq_composite(sample_bars):
    from arch.data import nasdaq

    qqq = SampleSource().fetch("QQQ", dt.date(1999, 1, 4), dt.date(2018, 12, 31))
    assert qqq.equals(_arch_frame("nasdaq")) and qqq["date"].to_list() == sample_bars["date"].to_list()
    assert qqq["close"][0] == nasdaq.load()["Close"].iloc[0] != sample_bars["close"][0]
    assert qqq["adj_close"].equals(qqq["close"])  # an index pays no dividends
    got = build_chain("sample").fetch("QQQ", D0, D1)
    assert got.source == "sample:^IXIC" and got.frame.equals(qqq.filter(pl.col("date").is_between(D0, D1)))
    assert build_chain("sample").last_session("QQQ") == ("sample:^IXIC", dt.date(2018, 12, 31), [])
    assert "Nasdaq Composite index (^IXIC, 1999-01-04 … 2018-12-31) stands in for QQQ" in sources.sample_stand_in("QQQ")


UNKNOWN = (r"the bundled offline sample has no IWM: it serves only stand-ins for SPY \(the S&P 500 index, \^GSPC\) "
           r"and QQQ \(the Nasdaq Composite index, \^IXIC\), 1999-01-04 … 2018-12-31; go online, set "
           r"REGIME_SOURCE=csv with REGIME_OHLCV_CSV pointing at your own IWM file, or use SPY or QQQ\.")


def test_sample_refuses_any_other_ticker_in_one_sentence(monkeypatch):
    import yfinance

    with pytest.raises(SourceError, match=f"^{UNKNOWN}$"):
        SampleSource().fetch("IWM", D0, D1)
    with pytest.raises(SourceError, match=f"^{UNKNOWN}$"):
        SampleSource().last_session("IWM")  # what `make run`'s planner asks first: it must not plan the sample
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pd.DataFrame())
    with pytest.raises(SourceError, match=f"no source can serve IWM: .*sample failed: {UNKNOWN}$"):
        build_chain("auto").last_session("IWM")
    with pytest.raises(SourceError, match=f"no source could serve IWM .*sample failed: {UNKNOWN}$"):
        build_chain("sample").fetch("IWM", D0, D1)


def test_every_sample_sentence_comes_from_the_one_mapping(monkeypatch):
    monkeypatch.setitem(sources.SAMPLE_SERIES, "DIA", sources.SampleSeries("^DJI", "the Dow", "sp500"))
    assert SampleSource().origin("DIA") == "sample:^DJI"
    with pytest.raises(SourceError, match=r"QQQ \(the Nasdaq Composite index, \^IXIC\) and DIA \(the Dow, "
                                          r"\^DJI\).*or use SPY, QQQ or DIA\.$"):
        SampleSource().fetch("IWM", D0, D1)


class _Failing:
    def __init__(self, name):
        self.name = name

    def fetch(self, ticker, start, end):
        raise SourceError(f"{self.name} is down")

    def last_session(self, ticker):
        raise SourceError(f"{self.name} is down")


def test_chain_falls_back_in_order_and_reports_each_failure(sample_bars, monkeypatch):
    import yfinance

    monkeypatch.setattr(yfinance, "download", lambda *a, **k: pd.DataFrame())
    chain = build_chain("auto", stooq_api_key=None)
    assert [s.name for s in chain.sources] == ["yfinance", "stooq", "sample"]
    got = chain.fetch("SPY", D0, D1)
    assert got.source == "sample:^GSPC"  # the true series, stored in every row
    assert [w.split(" failed")[0] for w in got.warnings] == ["yfinance", "stooq"]
    assert "STOOQ_API_KEY" in got.warnings[1]


def test_chain_uses_the_first_source_that_answers(sample_bars):
    def download(ticker, **kw):
        return yf_frame(sample_bars, kw["start"], kw["end"])

    chain = SourceChain([_Failing("a"), YFinanceSource(download), SampleSource()])
    got = chain.fetch("SPY", D0, D1)
    assert got.source == "yfinance" and got.warnings == ["a failed: a is down"]


def test_chain_raises_when_nothing_serves():
    with pytest.raises(SourceError, match="no source could serve SPY.*a is down.*b is down"):
        SourceChain([_Failing("a"), _Failing("b")]).fetch("SPY", D0, D1)


def test_single_source_setting_means_no_fallback():
    assert [s.name for s in build_chain("sample").sources] == ["sample"]
    with pytest.raises(SourceError, match="unknown"):
        build_chain("bloomberg")


def test_no_partial_bar_of_an_open_session(sample_bars):
    # 2018-06-29 14:00 New York (18:00 UTC): that session has not closed yet, so its bar is dropped.
    now = dt.datetime(2018, 6, 29, 18, 0, tzinfo=dt.timezone.utc)
    kept = keep_closed_sessions(sample_bars, D0, D1, now)
    assert kept["date"].max() == dt.date(2018, 6, 28)
    later = dt.datetime(2018, 6, 29, 21, 0, tzinfo=dt.timezone.utc)
    assert keep_closed_sessions(sample_bars, D0, D1, later)["date"].max() == D1


@pytest.mark.network
def test_yfinance_live():
    frame = YFinanceSource().fetch("SPY", dt.date(2024, 1, 2), dt.date(2024, 1, 31))
    assert frame.height == 21
