"""The macro asset: FRED through the real pandas-datareader reader (served from 127.0.0.1), the bundled sample,
the point-in-time rule, the quality rules and the check."""
from __future__ import annotations

import datetime as dt
import http.server
import threading
import time

import dagster as dg
import polars as pl
import pytest

from regime_platform import calendar
from regime_platform import storage as wh
from regime_platform.defs.ingestion.macro import macro, macro_quality
from regime_platform.ingestion import macro as rules
from regime_platform.ingestion import macro_sources as sources
from regime_platform_tests.conftest import read_table

D = dt.date


class _Handler(http.server.BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, str, float]] = {}  # series id → (status, body, delay seconds)

    def do_GET(self):  # noqa: N802 (http.server's name)
        name = self.path.split("id=")[-1]
        status, body, delay = self.answers.get(name, (404, "<html>Series not found</html>", 0.0))
        time.sleep(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/csv")
            self.end_headers()
            self.wfile.write(body.encode())
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def fred(monkeypatch):
    """A FRED stand-in on 127.0.0.1: the real FredReader is pointed at it (its `url` property)."""
    from pandas_datareader.famafrench import FamaFrenchReader
    from pandas_datareader.fred import FredReader

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setattr(FredReader, "url", property(lambda self: f"{local}/graph.csv"))
    monkeypatch.setattr(FamaFrenchReader, "url", property(lambda self: f"{local}/famafrench?id=FF"))  # 404
    _Handler.answers = {}
    yield _Handler.answers
    server.shutdown()


def fred_csv(name: str, rows: list[tuple[str, str]]) -> str:
    return "observation_date," + name + "\n" + "".join(f"{d},{v}\n" for d, v in rows)


def test_usable_from_daily_is_the_lag_th_session_after_and_monthly_after_the_month_plus_its_lag():
    sessions = rules.session_grid(D(2018, 5, 1), D(2018, 8, 1))
    assert rules.usable_from(D(2018, 6, 1), "VIXCLS", 1, sessions) == D(2018, 6, 4)  # Friday → Monday
    assert rules.usable_from(D(2018, 6, 1), "VIXCLS", 2, sessions) == D(2018, 6, 5)
    assert rules.usable_from(D(2018, 7, 3), "T10Y2Y", 1, sessions) == D(2018, 7, 5)  # over Independence Day
    # June's BAA: the first session after June (July 2) plus the stated 5 sessions, July 4 skipped
    assert sources.CATALOG["BAA"].publication_lag == 5
    assert rules.usable_from(D(2018, 6, 1), "BAA", 1, sessions) == D(2018, 7, 10)
    assert rules.usable_from(D(2018, 6, 1), "FF_RF", 1, sessions) == D(2018, 8, 1)  # July 2 + 21 sessions


def test_fred_dots_are_missing_short_gaps_carried_and_flagged_long_ones_left(fred):
    # 2018-10-08 is Columbus Day (FRED has no value, XNYS trades); 10-10 is "."; 10-15 … 10-19 are absent.
    fred["VIXCLS"] = (200, fred_csv("VIXCLS", [("2018-10-04", "14.2"), ("2018-10-05", "14.8"), ("2018-10-09", "15.9"),
                                              ("2018-10-10", "."), ("2018-10-11", "24.9"), ("2018-10-12", "21.3"),
                                              ("2018-10-22", "19.6")]), 0.0)
    frame = sources.fred_frame("VIXCLS", D(2018, 10, 1), D(2018, 10, 31))
    assert frame["value"].isna().sum() == 1  # "." is read as missing, never 0
    answer = sources.MacroAnswer("VIXCLS", pl.from_pandas(frame), "fred", [])
    built = rules.build_rows(answer, 1, dt.datetime(2018, 11, 1))
    rows = {r["date"]: r for r in built.rows.to_dicts()}
    assert (built.observations, built.missing, built.carried) == (6, 1, 5)
    assert rows[D(2018, 10, 8)]["value"] == 14.8 and rows[D(2018, 10, 8)]["filled_from"] == D(2018, 10, 5)
    assert rows[D(2018, 10, 10)]["value"] == 15.9 and rows[D(2018, 10, 10)]["filled_from"] == D(2018, 10, 9)
    # 10-15, 10-16, 10-17 are within 3 sessions of 10-12; 10-18 and 10-19 are not: never invented
    assert [d for d in (D(2018, 10, 15), D(2018, 10, 16), D(2018, 10, 17)) if rows[d]["filled_from"]] == \
        [D(2018, 10, 15), D(2018, 10, 16), D(2018, 10, 17)]
    assert built.gaps == [D(2018, 10, 18), D(2018, 10, 19)]
    assert D(2018, 10, 23) not in rows  # nothing is carried past the last value
    assert rows[D(2018, 10, 12)]["usable_from"] == D(2018, 10, 15)
    report = rules.quality_report(built.rows, 1)
    assert not report.errors and "2 sessions" in report.warnings[0]


def test_an_html_page_or_a_timeout_is_one_sentence_naming_the_series(fred):
    fred["T10Y2Y"] = (200, "<!DOCTYPE html><html><body><h1>Error</h1><p>Service unavailable</p></body></html>", 0.0)
    with pytest.raises(sources.MacroSourceError, match="T10Y2Y.*nothing of T10Y2Y was stored"):
        sources.fred_frame("T10Y2Y", D(2018, 1, 1), D(2018, 12, 31))
    fred["DTB3"] = (200, fred_csv("DTB3", [("2018-01-02", "1.39")]), 3.0)
    from pandas_datareader.fred import FredReader

    def quick(*args, **kwargs):
        return FredReader(*args, **{**kwargs, "timeout": 0.3, "retry_count": 0})
    started = time.monotonic()
    with pytest.raises(sources.MacroSourceError, match="FRED could not serve DTB3"):
        sources.fred_frame("DTB3", D(2018, 1, 1), D(2018, 12, 31), reader=quick)
    assert time.monotonic() - started < 2.5


def test_the_sample_serves_real_series_and_says_so():
    answers = sources.fetch_series(["VIXCLS", "BAA", "T10Y2Y"], D(2014, 1, 1), D(2018, 12, 31), "sample")
    assert answers["VIXCLS"].source == "sample:arch.data.vix" and answers["BAA"].source == "sample:arch.data.default"
    assert answers["FF_RF"].source == "sample:arch.data.frenchdata"  # the cash rate joins the list
    rf = answers["FF_RF"].frame
    assert rf["date"].min() == D(2014, 1, 1) and rf["date"].max() == D(2018, 11, 1)  # YYYYMM read right
    assert 0.0 <= rf["value"].min() and rf["value"].max() < 0.3  # percent a month, 2014-2018
    assert isinstance(answers["T10Y2Y"], sources.MacroSourceError) and "no T10Y2Y" in str(answers["T10Y2Y"])


def run_macro(resources, start: str, end: str, raise_on_error: bool = True):
    return dg.materialize([macro, macro_quality], resources=resources, raise_on_error=raise_on_error,
                          tags={"dagster/asset_partition_range_start": start,
                                "dagster/asset_partition_range_end": end})


def test_macro_asset_stores_the_sample_point_in_time_idempotent_and_checked(resources):
    result = run_macro(resources, "2018-07-02", "2018-12-31")
    assert result.success
    meta = result.asset_materializations_for_node("macro")[0].metadata
    assert meta["is_sample"].value is True and "sample:arch.data.vix" in meta["source"].value
    assert "T10Y2Y" in meta["not_stored"].value  # said, not invented
    stored = read_table(resources, "SELECT series, count(*) n, min(date) lo, max(date) hi, min(source) s "
                                   "FROM market.macro GROUP BY series ORDER BY series")
    assert stored["series"].to_list() == ["AAA", "BAA", "FF_RF", "VIXCLS"]
    assert stored.filter(pl.col("series") == "VIXCLS")["lo"][0] == D(2018, 5, 1)  # 62 days before the first partition, no more
    late = read_table(resources, "SELECT count(*) FROM market.macro WHERE usable_from <= date").item()
    assert late == 0
    check = result.get_asset_check_evaluations()[0]
    assert check.passed, check.metadata
    # idempotent: the same range again replaces, never duplicates
    assert run_macro(resources, "2018-07-02", "2018-12-31").success
    assert read_table(resources, "SELECT count(*) FROM market.macro").item() == int(stored["n"].sum())


def test_a_planted_look_ahead_fails_the_check_and_a_bad_fetch_changes_nothing(resources, fred):
    assert run_macro(resources, "2018-06-01", "2018-12-31").success
    before = read_table(resources, "SELECT * FROM market.macro ORDER BY series, date")
    with resources["warehouse"].connect() as con:  # plant: one VIX close usable on its own date
        con.execute("UPDATE market.macro SET usable_from = date WHERE series = 'VIXCLS' AND date = '2018-10-10'")
    result = dg.materialize([macro_quality], resources=resources, raise_on_error=False,
                            selection=dg.AssetSelection.checks(macro_quality))
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed and "look-ahead" in check.metadata["errors"].value
    # FRED only (REGIME_SOURCE=yfinance) answering an HTML page: the run fails and market.macro is unchanged
    from regime_platform.defs.resources import RegimeSettings

    fred["VIXCLS"] = (200, "<html><body>Error</body></html>", 0.0)
    span = {"dagster/asset_partition_range_start": "2018-06-01", "dagster/asset_partition_range_end": "2018-12-31"}

    def fetch_online(macro_inputs: str):
        online = dict(resources, settings=RegimeSettings(data_dir=resources["settings"].data_dir, source="yfinance",
                                                         macro_series=["VIXCLS"], macro=macro_inputs))
        return dg.materialize([macro], resources=online, raise_on_error=False, tags=span)

    assert not fetch_online("auto").success  # models read macro inputs: no run on a failed fetch
    # prices-only models (the default REGIME_MACRO=off): the daily run goes on, says what was not stored
    prices_only = fetch_online("off")
    assert prices_only.success
    meta = prices_only.asset_materializations_for_node("macro")[0].metadata
    assert meta["rows_written"].value == 0 and "VIXCLS" in meta["not_stored"].value
    with resources["warehouse"].connect() as con:
        con.execute("UPDATE market.macro SET usable_from = '2018-10-11' WHERE series = 'VIXCLS' AND date = '2018-10-10'")
        after = wh.read_macro(con)
    assert after.sort("series", "date").equals(before)


def test_an_unreachable_fred_is_asked_once_and_auto_serves_the_sample_saying_why(monkeypatch):
    from pandas_datareader.famafrench import FamaFrenchReader
    from pandas_datareader.fred import FredReader

    asked = []
    closed = property(lambda self: asked.append(self.symbols) or "http://127.0.0.1:9/graph.csv")  # nothing listens
    monkeypatch.setattr(FredReader, "url", closed)
    monkeypatch.setattr(FamaFrenchReader, "url", property(lambda self: "http://127.0.0.1:9/ff.zip"))
    answers = sources.fetch_series(["VIXCLS", "BAA", "T10Y2Y"], D(2018, 1, 1), D(2018, 12, 31), "auto")
    assert asked == ["VIXCLS"]
    assert answers["VIXCLS"].source == "sample:arch.data.vix" and "SAMPLE" in answers["VIXCLS"].warnings[0]
    assert "FRED was not asked for BAA" in answers["BAA"].warnings[0]
    assert isinstance(answers["T10Y2Y"], sources.MacroSourceError)
    assert answers["FF_RF"].source == "sample:arch.data.frenchdata" and "FF_RF_D" not in answers
    # the log says FRED's failure once: on VIXCLS, where it failed, and one line for the series not asked after it
    lines = sources.said_once(answers)
    assert sum("could not serve VIXCLS" in line for line in lines) == 1
    assert lines[-1] == sources.not_asked_sentence("BAA, T10Y2Y", "VIXCLS")
    assert len(lines) == 3  # VIXCLS's fallback, FF_RF's fallback (the Fama–French library's own failure), the rest


def famafrench_zip(days: list[dt.date]) -> bytes:
    """A Fama–French daily factors file as the library serves it: a zipped CSV, notes, then the table."""
    import io
    import zipfile

    lines = "\r\n".join(f"{d:%Y%m%d},   0.10,  -0.05,   0.02,   0.0{i % 10}" for i, d in enumerate(days))
    text = ("This file was created using the 201812 CRSP database.\r\n\r\n"
            "       ,Mkt-RF,SMB,HML,RF\r\n" + lines + "\r\n\r\n Copyright 2019 Kenneth R. French\r\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("F-F_Research_Data_Factors_daily.CSV", text)
    return buffer.getvalue()


def test_the_famafrench_daily_rf_is_read_through_the_real_reader(monkeypatch):
    from pandas_datareader.famafrench import FamaFrenchReader

    days = calendar.sessions(D(2018, 10, 1), D(2018, 12, 31))
    body = famafrench_zip(days)

    class Zip(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Zip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(FamaFrenchReader, "url", property(lambda self: f"http://127.0.0.1:{server.server_port}/ff.zip"))
    try:
        frame = sources.famafrench_daily_rf(D(2018, 11, 1), D(2018, 12, 31))
    finally:
        server.shutdown()
    assert list(frame["date"])[0] == D(2018, 11, 1) and list(frame["date"])[-1] == D(2018, 12, 31)
    first = days.index(D(2018, 11, 1))
    assert frame["value"].iloc[0] == pytest.approx((first % 10) / 100)  # percent a day, as published


@pytest.mark.network
def test_fred_serves_vixcls_online():
    frame = sources.fred_frame("VIXCLS", D(2018, 1, 1), D(2018, 1, 31))
    assert 15 <= len(frame) <= 22 and frame["value"].between(5, 80).all()
