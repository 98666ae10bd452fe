"""Source faults, offline: a vendor on 127.0.0.1 (a free port) that times out, cuts its answer off, answers HTTP 429
or 5xx or an HTML page; a DNS failure and a refused connection; yfinance's own offline answer. Each ends in one
sentence that says whether asking again may help (transient) or not, never quotes the API key, and stores nothing;
the ohlcv asset retries a transient fault (its RetryPolicy) and fails a permanent one at once."""
from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from regime_platform.defs.ingestion.assets import SOURCE_RETRY, ohlcv
from regime_platform.defs.resources import RegimeSettings
from regime_platform.ingestion.sources import (
    SourceError,
    StooqSource,
    TransientSourceError,
    YFinanceSource,
    build_chain,
)
from regime_platform_tests.conftest import platform_resources

D0, D1 = dt.date(2018, 6, 1), dt.date(2018, 6, 5)
KEY = "S3CRET-stooq-key-0042"
CSV = ("Date,Open,High,Low,Close,Volume\n2018-06-01,270.1,272.0,269.5,271.9,80000000\n"
       "2018-06-04,272.3,273.1,271.8,273.0,60000000\n2018-06-05,273.2,273.9,272.5,273.4,55000000\n")
HTML = "<!DOCTYPE html><html><head><title>Stooq</title></head><body>Get your apikey</body></html>"


class Vendor:
    """A local HTTP vendor answering from a script: each request takes the next answer, the last one repeats.
    An answer is (status, body) or "sleep" (no answer within the client's timeout) or "cut" (a Content-Length
    longer than the body, then the connection closed)."""

    def __init__(self, *answers):
        self.answers, self.requests = list(answers), []
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                vendor.requests.append(self.path)
                answer = vendor.answers.pop(0) if len(vendor.answers) > 1 else vendor.answers[0]
                if answer == "sleep":
                    time.sleep(1.5)
                    return
                status, body = (200, CSV[:150]) if answer == "cut" else answer
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(CSV) if answer == "cut" else len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/q/d/l/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vendor():
    made = []

    def start(*answers) -> Vendor:
        made.append(Vendor(*answers))
        return made[-1]

    yield start
    for v in made:
        v.close()


def a_closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


def one_sentence(text: str) -> bool:
    return text.count("\n") == 0 and text.rstrip().endswith(".") and "Traceback" not in text


@pytest.mark.parametrize("answer, transient, said", [
    ("sleep", True, "Stooq could not be reached (no answer within 0.5 s); check the network or try again later."),
    ("cut", True, "Stooq could not be reached (the answer was cut off); check the network or try again later."),
    ((500, "oops"), True, "Stooq answered HTTP 500 for SPY; try again later or use another source."),
    ((503, ""), True, "Stooq answered HTTP 503 for SPY; try again later or use another source."),
    ((429, "slow down"), True, "Stooq answered HTTP 429 for SPY; try again later or use another source."),
    ((404, "nope"), False, "Stooq answered HTTP 404 for SPY; check REGIME_TICKERS and STOOQ_API_KEY"),
    ((200, HTML), False, "Stooq answered with an HTML page instead of CSV (missing or invalid API key)."),
    ((200, "Exceeded the daily hits limit"), False, "Stooq refused: the API key's daily hits limit is exceeded"),
    ((200, ""), False, "Stooq has no data for spy.us: check that ticker in REGIME_TICKERS."),
    ((200, CSV[:-12]), False, "Stooq SPY: the bar of 2018-06-05 has an empty or non-numeric field."),
    ((200, "Date,Open,Close\n2018-06-01,1,2\n"), False, "Stooq's CSV for SPY has columns"),
])
def test_stooq_faults_end_in_one_sentence_transient_or_not(vendor, answer, transient, said):
    v = vendor(answer)
    with pytest.raises(SourceError) as raised:
        StooqSource(KEY, base_url=v.url, timeout=0.5).fetch("SPY", D0, D1)
    assert str(raised.value).startswith(said), str(raised.value)
    assert raised.value.transient is transient and isinstance(raised.value, TransientSourceError) is transient
    assert one_sentence(str(raised.value)) and KEY not in str(raised.value)
    assert raised.value.__cause__ is None or KEY not in str(raised.value.__cause__)
    assert len(v.requests) == 1 and f"apikey={KEY}" in v.requests[0]  # asked once, with the key


def test_stooq_refused_connection_and_dns_failure_are_transient(monkeypatch):
    refused = StooqSource(KEY, base_url=f"http://127.0.0.1:{a_closed_port()}/q/d/l/", timeout=2)
    for fault in ("refused", "dns"):
        if fault == "dns":  # the resolver fails as it does offline (patched: no query leaves the machine)
            def no_dns(*args, **kwargs):
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

            monkeypatch.setattr(socket, "getaddrinfo", no_dns)
            refused = StooqSource(KEY, base_url="http://stooq.invalid/q/d/l/", timeout=2)
        with pytest.raises(TransientSourceError) as raised:
            refused.fetch("SPY", D0, D1)
        assert str(raised.value) == ("Stooq could not be reached (no connection: the DNS lookup failed or the "
                                     "connection was refused); check the network or try again later.")
        assert KEY not in repr(raised.value.__cause__) and raised.value.__suppress_context__


def test_stooq_unreachable_is_said_for_every_ticker_and_asked_once(vendor):
    v = vendor("sleep")
    answers = StooqSource(KEY, base_url=v.url, timeout=0.5).fetch_many(["SPY", "QQQ"], D0, D1)
    assert all(isinstance(a, TransientSourceError) for a in answers.values())
    assert len(v.requests) == 1  # once Stooq itself fails, the other tickers are not asked


def offline_yfinance(errors: dict[str, str]):
    """What yfinance 1.7.0 does offline (measured on this machine): logs its own errors on the `yfinance` logger,
    triggers pandas deprecation warnings, returns an empty frame."""
    def download(tickers, **kwargs):
        log = logging.getLogger("yfinance")
        log.error("Cookie/crumb fetch failed (DNSError), continuing without crumb" if "DNS" in str(errors) else "x")
        log.error("\n%.f Failed download%s:", len(errors), "s" if len(errors) > 1 else "")
        for ticker, error in errors.items():
            log.error(f"['{ticker}']: {error}")
        warnings.warn("The inplace keyword in DataFrame.rename is deprecated", DeprecationWarning, stacklevel=1)
        return pd.DataFrame()

    return download


DNS = "DNSError('Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com.')"


@pytest.mark.parametrize("error, transient, said", [
    (DNS, True, "yfinance could not reach Yahoo Finance for SPY (the DNS lookup failed: offline?); check the network "
                "or try again later."),
    ("YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')", True,
     "yfinance could not reach Yahoo Finance for SPY (rate-limited by Yahoo)"),
    ("Timeout('Failed to perform, curl: (28) Operation timed out')", True,
     "yfinance could not reach Yahoo Finance for SPY (no answer in time)"),
    ("YFPricesMissingError('possibly delisted; no price data found')", False,
     "yfinance returned no rows for SPY (2018-06-01…2018-06-05): an unknown or delisted ticker"),
])
def test_yfinance_offline_is_one_quiet_sentence(error, transient, said, capfd):
    logging.getLogger("yfinance").setLevel(logging.NOTSET)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(SourceError) as raised:
            YFinanceSource(offline_yfinance({"SPY": error})).fetch("SPY", D0, D1)
    assert str(raised.value).startswith(said) and raised.value.transient is transient
    assert one_sentence(str(raised.value))
    out, err = capfd.readouterr()
    assert out == err == ""  # yfinance's own lines are not printed (lastResort would print them to stderr)
    assert not [w for w in seen if issubclass(w.category, DeprecationWarning)]


def test_only_the_failing_tickers_own_lines_decide():
    answers = YFinanceSource(offline_yfinance({"XYZ": "YFPricesMissingError('no price data found')"})).fetch_many(
        ["XYZ", "QQQ"], D0, D1)
    assert not answers["XYZ"].transient and "unknown or delisted" in str(answers["XYZ"])


@pytest.mark.parametrize("frame, said", [
    (pd.DataFrame({"Open": [1.0], "Close": [1.0]}, index=pd.DatetimeIndex(["2018-06-01"], name="Date")),
     "yfinance answered without 'Adj Close'"),
    (pd.DataFrame({"Open": [1.0, 1.0], "High": [1.0, 1.0], "Low": [1.0, 1.0], "Close": [1.0, 1.0],
                   "Adj Close": [1.0, 1.0], "Volume": [1, 1]}, index=pd.DatetimeIndex(["2018-06-01"] * 2, name="Date")),
     "yfinance SPY: date 2018-06-01 appears more than once"),
    (pd.DataFrame({"Open": [1.0], "High": [1.0], "Low": [1.0], "Close": [0.0], "Adj Close": [0.0], "Volume": [1]},
                  index=pd.DatetimeIndex(["2018-06-01"], name="Date")),
     "yfinance SPY: the bar of 2018-06-01 has a non-positive price."),
])
def test_malformed_yfinance_frames_are_permanent(frame, said):
    with pytest.raises(SourceError) as raised:
        YFinanceSource(lambda *a, **k: frame).fetch("SPY", D0, D1)
    assert str(raised.value).startswith(said) and not raised.value.transient


def test_the_chain_says_transient_when_one_source_was():
    chain = build_chain("auto", yf_download=offline_yfinance({"SPY": DNS}), stooq_api_key=None)
    got = chain.fetch_many(["SPY"], dt.date(2026, 6, 1), dt.date(2026, 6, 5))["SPY"]  # past the sample's end
    assert isinstance(got, TransientSourceError)
    assert "(the DNS lookup failed: offline?)" in str(got) and "Stooq skipped" in str(got)
    permanent = build_chain("sample").fetch_many(["SPY"], dt.date(2026, 6, 1), dt.date(2026, 6, 5))["SPY"]
    assert not permanent.transient


# --- the asset: a transient fault retried, a permanent one not; the key nowhere in what is stored ------------------

def stooq_resources(root: Path, url: str):
    resources = platform_resources(root)
    resources["settings"] = RegimeSettings(data_dir=str(root), source="stooq", stooq_url=url,
                                           stooq_api_key=dg.EnvVar("STOOQ_API_KEY"))
    return resources


def materialize_range(resources, instance):
    return dg.materialize([ohlcv], resources=resources, instance=instance, raise_on_error=False,
                          tags={"dagster/asset_partition_range_start": D0.isoformat(),
                                "dagster/asset_partition_range_end": D1.isoformat()})


def events(instance, result, kind: dg.DagsterEventType):
    return [e for e in instance.all_logs(result.run_id) if e.dagster_event and e.dagster_event_type == kind]


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_ohlcv_has_a_retry_policy_with_backoff():
    assert ohlcv.op.retry_policy == SOURCE_RETRY
    assert SOURCE_RETRY.max_retries == 3 and SOURCE_RETRY.backoff == dg.Backoff.EXPONENTIAL
    for attempt, base in ((1, 10), (2, 30), (3, 70)):  # about 10 s, 30 s, 70 s, each ± 10 s
        assert all(abs(SOURCE_RETRY.calculate_delay(attempt) - base) <= 10 for _ in range(50))


@pytest.mark.slow  # waits out the first retry's delay: 0-20 s
def test_a_transient_fault_is_retried_and_the_key_is_stored_nowhere(tmp_path, vendor, monkeypatch):
    monkeypatch.setenv("STOOQ_API_KEY", KEY)
    v = vendor((503, "busy"), (200, CSV))
    (tmp_path / "instance").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "instance")) as instance:
        resources = stooq_resources(tmp_path / "data", v.url)
        result = materialize_range(resources, instance)
        assert result.success
        assert len(events(instance, result, dg.DagsterEventType.STEP_UP_FOR_RETRY)) == 1
        rows = resources["warehouse"].read("SELECT date, close, source FROM market.ohlcv ORDER BY date")
        assert rows.rows() == [(dt.date(2018, 6, 1), 271.9, "stooq"), (dt.date(2018, 6, 4), 273.0, "stooq"),
                               (dt.date(2018, 6, 5), 273.4, "stooq")]
    assert len(v.requests) == 2 and all(f"apikey={KEY}" in r for r in v.requests)  # resolved at launch
    # secrets never stored: not in the run's event log, the warehouse or the artifacts
    assert files_holding(tmp_path, KEY.encode()) == []


def test_a_permanent_fault_fails_at_once_and_changes_nothing_stored(tmp_path, vendor, monkeypatch):
    monkeypatch.setenv("STOOQ_API_KEY", KEY)
    good = vendor((200, CSV))
    (tmp_path / "instance").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "instance")) as instance:
        stored = stooq_resources(tmp_path / "data", good.url)
        assert materialize_range(stored, instance).success
        before = stored["warehouse"].read("SELECT * FROM market.ohlcv ORDER BY date")
        html = vendor((200, HTML))
        result = materialize_range(stooq_resources(tmp_path / "data", html.url), instance)
        assert not result.success
        assert events(instance, result, dg.DagsterEventType.STEP_UP_FOR_RETRY) == []  # no retry of a key page
        failure = result.get_step_failure_events()[0].event_specific_data
        said = failure.user_failure_data.description
        assert said.startswith("no source could serve SPY 2018-06-01…2018-06-05: stooq failed: Stooq answered with "
                               "an HTML page instead of CSV (missing or invalid API key).") and "\n" not in said
        assert len(html.requests) == 1
        assert stored["warehouse"].read("SELECT * FROM market.ohlcv ORDER BY date").equals(before)
    assert files_holding(tmp_path, KEY.encode()) == []
