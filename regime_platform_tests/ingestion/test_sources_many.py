"""A list of tickers through each source and the chain, offline: one request per source where it can, each
ticker served or failing on its own. The bars are the bundled sample's real series; yfinance is a fake
`download` whose multi-ticker shape is checked against yfinance 1.7.0's own assembly code."""
from __future__ import annotations

import datetime as dt
import http.server
import logging
import re
import threading
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import polars as pl
import pytest
import yfinance  # imported here: its import adds a warnings filter that would outrank a test's own marks
import yfinance.multi

from regime_platform.ingestion import sources
from regime_platform.ingestion.sources import (
    CsvSource,
    Fetched,
    SampleSource,
    SourceChain,
    SourceError,
    StooqSource,
    YFinanceSource,
    build_chain,
)

D0, D1 = dt.date(2018, 6, 1), dt.date(2018, 6, 29)
JUNE = 21  # XNYS sessions 2018-06-01 … 2018-06-29


@pytest.fixture(scope="module")
def real() -> dict[str, pl.DataFrame]:
    """The sample's two real series, whole: SPY ← S&P 500, QQQ ← Nasdaq Composite."""
    return {t: SampleSource().fetch(t, sources.SAMPLE_FIRST, sources.SAMPLE_LAST) for t in ("SPY", "QQQ")}


# ------------------------------------------------------------------------------------------ a yfinance fake
def history(bars: pl.DataFrame, start=None, end=None, period=None, **_) -> pd.DataFrame:
    """One ticker as yfinance's `Ticker.history(auto_adjust=False, actions=True)` gives it once `download` has
    dropped the time zone of daily bars (Adj Close × 0.9 so it is told apart from Close)."""
    if start is None:  # like yfinance, start/end win over period (download always passes a period)
        part = bars.filter(pl.col("date") > bars["date"].max() - dt.timedelta(days=int(period.rstrip("d"))))
    else:
        part = bars.filter(pl.col("date") >= dt.date.fromisoformat(start), pl.col("date") < dt.date.fromisoformat(end))
    pdf = part.to_pandas()
    return pd.DataFrame({
        "Open": pdf["open"].to_numpy(), "High": pdf["high"].to_numpy(), "Low": pdf["low"].to_numpy(),
        "Close": pdf["close"].to_numpy(), "Adj Close": pdf["adj_close"].to_numpy() * 0.9,
        "Volume": pdf["volume"].to_numpy().astype("int64"), "Dividends": 0.0, "Stock Splits": 0.0,
    }, index=pd.DatetimeIndex(pd.to_datetime(pdf["date"]), name="Date"))


def unfetchable() -> pd.DataFrame:
    """yfinance.utils.empty_df(): what `download` files under a ticker it could not fetch."""
    return pd.DataFrame(index=pd.DatetimeIndex([], name="Date"), data={
        c: np.nan for c in ["Open", "High", "Low", "Close", "Adj Close", "Volume"]})


def fake_download(served: dict[str, pl.DataFrame], calls: list):
    """yf.download as 1.7.0 shapes it (yfinance/multi.py `_download_impl`): one ticker (a str, multi_level_index
    False) → flat columns; a list → tickers upper-cased and de-duplicated through a set, each reindexed to the
    union of the dates, concatenated under MultiIndex columns (Ticker, Price) (group_by="ticker"); a ticker it could
    not fetch is all-NaN; nothing fetched → an empty frame."""
    def download(tickers, **kw):
        calls.append((tickers, kw))
        if isinstance(tickers, str):
            key = tickers.upper()
            return history(served[key], **kw) if key in served else pd.DataFrame()
        assert kw["group_by"] == "ticker" and kw["multi_level_index"] is True
        dfs = {t: history(served[t], **kw) if t in served else unfetchable() for t in {t.upper() for t in tickers}}
        index = None
        for df in dfs.values():
            if not df.empty:
                index = df.index if index is None else index.union(df.index)
        index = pd.DatetimeIndex([]) if index is None else index
        return pd.concat([df.reindex(index) for df in dfs.values()], axis=1, sort=True, keys=list(dfs),
                         names=["Ticker", "Price"])
    return download


@pytest.mark.filterwarnings("ignore:The inplace keyword")
def test_the_fake_is_shaped_like_yfinance_download(real, monkeypatch):
    """The real yf.download (only its per-ticker HTTP replaced) assembles the same frame the fake does."""
    short = {"SPY": real["SPY"], "QQQ": real["QQQ"].filter(pl.col("date") <= dt.date(2018, 6, 20))}  # fewer dates

    class OneTicker:  # yfinance.Ticker, offline: history as Yahoo's, in New York time; unknown tickers raise
        def __init__(self, ticker, session=None):
            self.ticker, self._price_history = ticker, None

        def history(self, **kw):
            if self.ticker not in short:
                raise RuntimeError(f"{self.ticker}: possibly delisted")
            frame = history(short[self.ticker], **kw)
            frame.index = frame.index.tz_localize("America/New_York")
            return frame

    monkeypatch.setattr(yfinance.multi, "Ticker", OneTicker)
    kw = dict(start="2018-06-01", end="2018-06-30", auto_adjust=False, actions=True, progress=False, threads=False)
    got = yfinance.download(["SPY", "QQQ", "XYZ"], group_by="ticker", multi_level_index=True, **kw)
    fake = fake_download(short, [])(["SPY", "QQQ", "XYZ"], group_by="ticker", multi_level_index=True, **kw)
    assert got.columns.names == ["Ticker", "Price"] and sorted(got.columns) == sorted(fake.columns)
    assert got[("QQQ", "Close")].isna().sum() == 7 and got[[c for c in got.columns if c[0] == "XYZ"]].isna().all().all()
    pd.testing.assert_frame_equal(fake[got.columns], got)
    none = yfinance.download(["XYZ", "ABC"], group_by="ticker", multi_level_index=True, **kw)
    assert none.empty and fake_download({}, [])(["XYZ", "ABC"], group_by="ticker", multi_level_index=True).empty
    # the source itself, on the real download's answer
    answers = YFinanceSource(yfinance.download).fetch_many(["SPY", "QQQ", "XYZ"], D0, D1)
    assert answers["SPY"].height == JUNE and answers["QQQ"]["date"].max() == dt.date(2018, 6, 20)
    assert isinstance(answers["XYZ"], SourceError) and "no rows for XYZ" in str(answers["XYZ"])


# ------------------------------------------------------------------------------------------ yfinance
def test_yfinance_serves_a_list_in_one_download_each_ticker_alone(real):
    calls: list = []
    yf = YFinanceSource(fake_download(real, calls))
    answers = yf.fetch_many(["SPY", "XYZ", "qqq"], D0, D1)
    assert len(calls) == 1 and calls[0][0] == ["SPY", "XYZ", "qqq"]
    assert calls[0][1]["start"] == "2018-06-01" and calls[0][1]["end"] == "2018-06-30"
    assert calls[0][1]["auto_adjust"] is False and calls[0][1]["actions"] is True
    assert list(answers) == ["SPY", "XYZ", "qqq"]
    # each split-off ticker is exactly what its own single-ticker request gives
    for ticker in ("SPY", "qqq"):
        alone = YFinanceSource(fake_download(real, [])).fetch(ticker, D0, D1)
        assert answers[ticker].equals(alone) and alone.height == JUNE
    assert answers["SPY"]["close"].to_list() == real["SPY"].filter(pl.col("date").is_between(D0, D1))["close"].to_list()
    assert answers["qqq"]["close"][0] == real["QQQ"].filter(pl.col("date") == D0)["close"][0]
    assert answers["SPY"]["adj_close"].to_list() == pytest.approx((answers["SPY"]["close"] * 0.9).to_list())
    assert isinstance(answers["XYZ"], SourceError)
    assert str(answers["XYZ"]).startswith("yfinance returned no rows for XYZ (2018-06-01…2018-06-29)")


def test_yfinance_one_ticker_stays_the_single_request(real):
    calls: list = []
    answers = YFinanceSource(fake_download(real, calls)).fetch_many(["SPY"], D0, D1)
    assert calls[0][0] == "SPY" and calls[0][1]["multi_level_index"] is False and "group_by" not in calls[0][1]
    assert answers["SPY"].height == JUNE


@pytest.mark.parametrize("answer", ["empty", "raise"])
def test_yfinance_list_failing_whole_fails_each_ticker_by_name(answer):
    def download(tickers, **kw):
        if answer == "raise":
            raise ConnectionError("DNS lookup failed")
        return fake_download({}, [])(tickers, **kw)  # offline: every ticker unfetched, an empty frame

    answers = YFinanceSource(download).fetch_many(["SPY", "QQQ"], D0, D1)
    for ticker in ("SPY", "QQQ"):
        assert isinstance(answers[ticker], SourceError)
        assert f"for {ticker}" in str(answers[ticker]) and ("DNS" in str(answers[ticker])) == (answer == "raise")


def test_yfinance_last_sessions_is_one_ten_day_download(real):
    calls: list = []
    spy = real["SPY"].filter(pl.col("date") < dt.date(2018, 12, 31))  # so its last session is its own
    got = YFinanceSource(fake_download({"SPY": spy, "QQQ": real["QQQ"]}, calls)).last_sessions(["SPY", "QQQ", "XYZ"])
    assert len(calls) == 1 and calls[0][1]["period"] == "10d"
    assert got["SPY"] == dt.date(2018, 12, 28) and got["QQQ"] == dt.date(2018, 12, 31)
    assert isinstance(got["XYZ"], SourceError) and "XYZ" in str(got["XYZ"])


# ------------------------------------------------------------------------------------------ Stooq
STOOQ_CSV = "Date,Open,High,Low,Close,Volume\n2018-06-01,270.1,272.0,269.5,271.9,8e7\n2018-06-04,272.3,273.1,271.8,273.0,6e7\n"


class _BySymbol(http.server.BaseHTTPRequestHandler):
    answers: dict = {}
    asked: list = []

    def do_GET(self):
        symbol = parse_qs(urlparse(self.path).query)["s"][0]
        type(self).asked.append(symbol)
        status, body = type(self).answers.get(symbol, (200, "No data"))
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def stooq_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BySymbol)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _BySymbol.asked.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/q/d/l/"
    server.shutdown()
    server.server_close()


def test_stooq_loops_one_request_per_ticker_each_failing_alone(stooq_url):
    _BySymbol.answers = {"spy.us": (200, STOOQ_CSV), "qqq.us": (200, STOOQ_CSV.replace("27", "17"))}
    got = StooqSource("KEY", base_url=stooq_url).fetch_many(["SPY", "XYZ", "QQQ"], D0, D1)
    assert _BySymbol.asked == ["spy.us", "xyz.us", "qqq.us"]
    assert got["SPY"]["close"].to_list() == [271.9, 273.0] and got["QQQ"]["close"].to_list() == [171.9, 173.0]
    assert isinstance(got["XYZ"], SourceError) and "no data for xyz.us" in str(got["XYZ"])


def test_stooq_itself_failing_stops_asking(stooq_url):
    _BySymbol.answers = {"spy.us": (200, "<!DOCTYPE html><html>Get your apikey</html>"), "qqq.us": (200, STOOQ_CSV)}
    got = StooqSource("BADKEY", base_url=stooq_url).fetch_many(["SPY", "QQQ"], D0, D1)
    assert _BySymbol.asked == ["spy.us"]  # an invalid key fails every ticker: QQQ is not asked
    assert all(isinstance(got[t], SourceError) and "STOOQ_API_KEY" in str(got[t]) for t in ("SPY", "QQQ"))
    _BySymbol.asked.clear()
    got = StooqSource(None, base_url=stooq_url).fetch_many(["SPY", "QQQ"], D0, D1)
    assert _BySymbol.asked == [] and all("STOOQ_API_KEY is not set" in str(got[t]) for t in ("SPY", "QQQ"))


# ------------------------------------------------------------------------------------------ user CSV
def write_csv(path, frames: dict[str, pl.DataFrame], header="ticker,Date,Open,High,Low,Close,Adj Close,Volume"):
    """Real bars of several tickers in one file, rows interleaved by date (not one block per ticker)."""
    rows = pl.concat([f.filter(pl.col("date").is_between(D0, D1)).with_columns(pl.lit(t).alias("ticker"))
                      for t, f in frames.items()]).sort("date", "ticker")
    rows = rows.select("ticker", pl.col("date").dt.to_string("%Y-%m-%d"), *sources.OHLCV_COLUMNS[1:])
    path.write_text(header + "\n" + rows.write_csv(include_header=False))
    return path


def test_csv_with_a_ticker_column_serves_each_ticker_from_one_read(tmp_path, real, monkeypatch):
    path = write_csv(tmp_path / "many.csv", real)
    reads = []
    read_csv = pl.read_csv
    monkeypatch.setattr(pl, "read_csv", lambda *a, **k: reads.append(a) or read_csv(*a, **k))
    got = CsvSource(path).fetch_many(["SPY", "qqq", "IWM"], D0, D1)
    assert len(reads) == 1
    for ticker, key in (("SPY", "SPY"), ("qqq", "QQQ")):
        assert got[ticker].equals(real[key].filter(pl.col("date").is_between(D0, D1))) and got[ticker].height == JUNE
    assert str(got["IWM"]) == (f"{path} has no rows for IWM: its Ticker column names 2 other tickers; "
                               "add IWM's rows or remove IWM from REGIME_TICKERS.")
    # the single-ticker API filters to its ticker; nothing is cached between calls, so an edit is seen
    assert CsvSource(path).fetch("QQQ", D0, D1).equals(got["qqq"])
    assert CsvSource(path).last_sessions(["SPY", "QQQ"]) == {"SPY": D1, "QQQ": D1}
    path.write_text(path.read_text().replace("QQQ,2018-06-29,", "QQQ,2018-06-29X,", 1))
    edited = CsvSource(path).last_sessions(["SPY", "QQQ"])
    assert edited["SPY"] == D1 and str(edited["QQQ"]).startswith(f"{path}, line {2 * JUNE}: Date is not YYYY-MM-DD")
    assert len(reads) == 4


def test_csv_single_ticker_apis_honour_the_ticker_column(tmp_path, real):
    short = {"SPY": real["SPY"], "QQQ": real["QQQ"].filter(pl.col("date") <= dt.date(2018, 6, 15))}
    path = write_csv(tmp_path / "many.csv", short)
    assert CsvSource(path).last_session("QQQ") == dt.date(2018, 6, 15)
    assert CsvSource(path).last_session("SPY") == dt.date(2018, 6, 29)
    assert CsvSource(path).last_sessions(["QQQ", "SPY"]) == {"QQQ": dt.date(2018, 6, 15), "SPY": dt.date(2018, 6, 29)}
    assert CsvSource(path).fetch("QQQ", D0, D1)["close"].to_list() == short["QQQ"].filter(
        pl.col("date") >= D0)["close"].to_list()
    with pytest.raises(SourceError, match=r"has no QQQ rows between 2018-06-18 and 2018-06-29\.$"):
        CsvSource(path).fetch("QQQ", dt.date(2018, 6, 18), D1)


def test_csv_bad_row_fails_its_ticker_alone_with_its_line(tmp_path, real):
    path = write_csv(tmp_path / "many.csv", real)
    lines = path.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("QQQ,2018-06-04"))
    lines[at] = lines[at].replace("2018-06-04", "2018-06-03")  # a Sunday
    path.write_text("\n".join(lines) + "\n")
    got = CsvSource(path).fetch_many(["SPY", "QQQ"], D0, D1)
    assert got["SPY"].height == JUNE
    assert str(got["QQQ"]) == (f"{path}, line {at + 1}: 2018-06-03 is not an XNYS trading session; "
                               "remove that row to serve QQQ.")


def test_csv_duplicate_ticker_date_is_refused_with_its_line(tmp_path, real):
    path = write_csv(tmp_path / "many.csv", real)
    lines = path.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("SPY,2018-06-05")) + 1
    again = lines[first - 1].split(",")
    again[5] = str(float(again[5]) + 1)  # the same (ticker, date) again with another Close, at the end
    lines.append(",".join(again))
    path.write_text("\n".join(lines) + "\n")
    got = CsvSource(path).fetch_many(["SPY", "QQQ"], D0, D1)
    assert str(got["SPY"]) == (f"{path}, line {len(lines)}: SPY 2018-06-05 appears more than once (first on line "
                               f"{first}); keep one row per ticker and date.")
    assert got["QQQ"].height == JUNE  # the same date for another ticker is no duplicate
    single = tmp_path / "one.csv"
    single.write_text("Date,Open,High,Low,Close,Volume\n2018-06-01,1,2,0.5,1.5,9\n2018-06-04,1,2,.5,1,9\n"
                      "2018-06-01,1,2,0.5,1.6,9\n")
    with pytest.raises(SourceError, match=r"line 4: SPY 2018-06-01 appears more than once \(first on line 2\)"):
        CsvSource(single).fetch("SPY", D0, D1)


def test_csv_without_a_ticker_column_serves_one_ticker_only(tmp_path):
    path = tmp_path / "spy.csv"
    path.write_text("Date,Open,High,Low,Close,Volume\n2018-06-01,1,2,0.5,1.5,100\n2018-06-04,1.5,2,1,1.8,90\n")
    got = CsvSource(path).fetch_many(["SPY", "QQQ"], D0, D1)
    for ticker in ("SPY", "QQQ"):
        assert str(got[ticker]) == (f"{path} has no Ticker column, so it can serve one ticker only, not {ticker} and "
                                    "1 other ticker at once; add a Ticker column naming each row's ticker, or ask "
                                    "for one ticker.")
    one = CsvSource(path).fetch_many(["IWM", "iwm"], D0, D1)  # one ticker, however spelled: the file is its history
    assert one["IWM"]["close"].to_list() == [1.5, 1.8] and one["iwm"].equals(one["IWM"])


# ------------------------------------------------------------------------------------------ the chain
class Recording:
    """Wraps a source, recording the tickers each call asked it for."""

    def __init__(self, source, asked: list):
        self.source, self.asked, self.name = source, asked, source.name

    def __getattr__(self, attr):
        return getattr(self.source, attr)

    def fetch_many(self, tickers, start, end):
        self.asked.append(list(tickers))
        return self.source.fetch_many(tickers, start, end)

    def last_sessions(self, tickers):
        self.asked.append(list(tickers))
        return self.source.last_sessions(tickers)


def spy_only_chain(real, calls, asked):
    """auto as configured offline with no Stooq key, but yfinance answering for SPY only."""
    chain = build_chain("auto", yf_download=fake_download({"SPY": real["SPY"]}, calls),
                        stooq_url="http://127.0.0.1:9/")
    chain.sources[-1] = Recording(chain.sources[-1], asked)
    return chain


XYZ_SAID = (r"^no source could serve XYZ 2018-06-01…2018-06-29: yfinance failed: yfinance returned no rows for XYZ "
            r"\(2018-06-01…2018-06-29\): .* \| stooq failed: Stooq skipped: STOOQ_API_KEY is not set\. .* \| "
            r"sample failed: the bundled offline sample has no XYZ: .*or use SPY or QQQ\.$")


def test_chain_falls_back_per_ticker(real, caplog):
    calls, asked = [], []
    chain = spy_only_chain(real, calls, asked)
    with caplog.at_level(logging.DEBUG, logger=sources.__name__):
        got = chain.fetch_many(["SPY", "QQQ", "XYZ"], D0, D1)
    assert list(got) == ["SPY", "QQQ", "XYZ"]
    assert len(calls) == 1 and calls[0][0] == ["SPY", "QQQ", "XYZ"]  # yfinance: one download for the list
    assert asked == [["QQQ", "XYZ"]]  # SPY, served, goes no further
    spy, qqq = got["SPY"], got["QQQ"]
    assert isinstance(spy, Fetched) and spy.source == "yfinance" and spy.warnings == []
    assert spy.frame.equals(YFinanceSource(fake_download(real, [])).fetch("SPY", D0, D1))
    assert qqq.source == "sample:^IXIC" and qqq.frame.equals(SampleSource().fetch("QQQ", D0, D1))
    assert [w.split(" failed:")[0] for w in qqq.warnings] == ["yfinance", "stooq"]
    assert "no rows for QQQ" in qqq.warnings[0] and "STOOQ_API_KEY" in qqq.warnings[1]
    assert isinstance(got["XYZ"], SourceError)
    assert re.match(XYZ_SAID, str(got["XYZ"])), str(got["XYZ"])
    # each fallback logged once, at DEBUG: yfinance and stooq for QQQ and XYZ, the sample for XYZ (the callers say
    # them as warnings: the ohlcv asset's log, the CLI), so a failure is said once, not once per layer
    ours = [r for r in caplog.records if r.name == sources.__name__]
    assert {r.levelno for r in ours} == {logging.DEBUG}
    logged = sorted(r.getMessage().split(":")[0] for r in ours)
    assert logged == ["sample failed for XYZ", "stooq failed for QQQ", "stooq failed for XYZ",
                      "yfinance failed for QQQ", "yfinance failed for XYZ"]


def test_chain_fetch_many_keeps_closed_sessions_only(real):
    now = dt.datetime(2018, 6, 29, 18, 0, tzinfo=dt.timezone.utc)  # 14:00 New York: 2018-06-29 still open
    got = spy_only_chain(real, [], []).fetch_many(["SPY", "QQQ"], D0, D1, now=now)
    assert got["SPY"].frame["date"].max() == got["QQQ"].frame["date"].max() == dt.date(2018, 6, 28)
    only_open = spy_only_chain(real, [], []).fetch_many(["SPY", "QQQ"], D1, D1, now=now)
    assert all(isinstance(only_open[t], SourceError) for t in ("SPY", "QQQ"))
    assert "yfinance failed: yfinance has no closed session of SPY between 2018-06-29 and 2018-06-29" in str(
        only_open["SPY"])


def test_chain_asks_per_ticker_a_source_without_fetch_many(real):
    class OnlyFetch:  # a source written before lists: fetch and last_session only
        name = "old"

        def __init__(self):
            self.asked = []

        def fetch(self, ticker, start, end):
            self.asked.append(ticker)
            if ticker != "QQQ":
                raise SourceError(f"old has no {ticker}")
            return real["QQQ"].filter(pl.col("date").is_between(start, end))

    old = OnlyFetch()
    got = SourceChain([old, SampleSource()]).fetch_many(["SPY", "QQQ"], D0, D1)
    assert old.asked == ["SPY", "QQQ"]
    assert got["QQQ"].source == "old" and got["SPY"].source == "sample:^GSPC"
    assert got["SPY"].warnings == ["old failed: old has no SPY"] and got["QQQ"].warnings == []


def test_chain_last_sessions_per_ticker(real):
    calls, asked = [], []
    spy = real["SPY"].filter(pl.col("date") < dt.date(2018, 12, 31))  # yfinance's SPY ends a session earlier
    chain = build_chain("auto", yf_download=fake_download({"SPY": spy}, calls))
    chain.sources[-1] = Recording(chain.sources[-1], asked)
    got = chain.last_sessions(["SPY", "QQQ", "XYZ"])
    assert len(calls) == 1 and calls[0][0] == ["SPY", "QQQ", "XYZ"] and calls[0][1]["period"] == "10d"
    assert asked == [["QQQ", "XYZ"]]
    assert got["SPY"] == ("yfinance", dt.date(2018, 12, 28), [])
    source, last, warnings = got["QQQ"]
    assert (source, last) == ("sample:^IXIC", dt.date(2018, 12, 31))
    assert [w.split(" failed:")[0] for w in warnings] == ["yfinance", "stooq"]
    assert isinstance(got["XYZ"], SourceError)
    assert str(got["XYZ"]).startswith("no source can serve XYZ: yfinance failed: yfinance returned no rows for XYZ")
    assert "| sample failed: the bundled offline sample has no XYZ" in str(got["XYZ"])
    # the one-ticker form is the same answer
    assert chain.last_session("SPY") == got["SPY"]
