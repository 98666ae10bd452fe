"""Where macro series come from: FRED and the Fama–French library through pandas-datareader, or offline the real
series `arch` bundles. The catalog below is the one declaration of each series' frequency, unit and publication lag.

Online: every FRED series through ``pandas_datareader.fred.FredReader`` (``fredgraph.csv``, no key; ``"."`` is a
missing value), and the cash rate also from the Fama–French daily factors' ``RF`` through
``pandas_datareader.famafrench.FamaFrenchReader`` (series ``FF_RF_D``). Offline (``REGIME_SOURCE=sample``, or
``auto`` when FRED cannot be reached) the bundled sample serves what `arch` ships: Moody's ``AAA`` and ``BAA``
(``arch.data.default``, monthly 1919–2018, what FRED publishes under those ids), the VIX close as ``VIXCLS``
(``arch.data.vix``, daily 2014-01-03 … 2019-01-03) and the Fama–French monthly ``RF`` (``arch.data.frenchdata``,
1926-07 … 2018-11) as ``FF_RF``; every row says so in its ``source`` (``sample:arch.data.vix``). ``T10Y2Y``,
``BAMLH0A0HYM2`` and ``DTB3`` have no offline stand-in. No Dagster here.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl


class MacroSourceError(RuntimeError):
    """A series could not be read (network, an HTML page instead of CSV, an unknown id): one sentence says which."""


class SourceUnreachable(MacroSourceError):
    """No answer at all (DNS, connection, timeout): the other series of that source are not tried."""


class NotAsked(MacroSourceError):
    """A series FRED was not asked for because it could not be reached for ``after`` a moment before."""

    def __init__(self, message: str, after: str) -> None:
        super().__init__(message)
        self.after = after


def not_asked_sentence(names: str, after: str) -> str:
    return (f"FRED was not asked for {names}: it could not be reached for {after} a moment ago; check the network or "
            "set REGIME_SOURCE=sample.")


def _unreachable(exc: Exception) -> bool:
    """pandas-datareader's RemoteDataError carries the requests exception when no response came back at all."""
    return "\nException:\n" in str(exc) or type(exc).__name__ in ("ConnectionError", "Timeout", "ReadTimeout")


@dataclass(frozen=True)
class MacroSeries:
    """One series: how often it is observed, what one value means, and how long after its period it is published."""

    name: str
    frequency: str  # "daily" | "monthly"
    unit: str
    publication_lag: int = 0  # monthly: sessions after the first session past the month's end
    description: str = ""


# Publication lags are stated, not measured: FRED posts a month's Moody's averages in the first days of the next
# month (5 sessions allowed); the Fama–French library is refreshed about a month after a month ends (21 sessions).
# A daily value's lag is the REGIME_MACRO_LAG setting (default 1: FRED posts a day's close the next morning).
CATALOG: dict[str, MacroSeries] = {s.name: s for s in (
    MacroSeries("VIXCLS", "daily", "index points", description="CBOE Volatility Index, close"),
    MacroSeries("T10Y2Y", "daily", "percent", description="10-year minus 2-year Treasury constant maturity"),
    MacroSeries("BAMLH0A0HYM2", "daily", "percent", description="ICE BofA US high-yield option-adjusted spread"),
    MacroSeries("BAA", "monthly", "percent", 5, "Moody's Baa corporate bond yield, monthly average"),
    MacroSeries("AAA", "monthly", "percent", 5, "Moody's Aaa corporate bond yield, monthly average"),
    MacroSeries("DTB3", "daily", "percent a year", description="3-month Treasury bill, secondary market (discount)"),
    MacroSeries("FF_RF", "monthly", "percent a month", 21, "Fama–French risk-free rate (1-month T-bill), monthly"),
    MacroSeries("FF_RF_D", "daily", "percent a day", description="Fama–French risk-free rate, daily"),
)}
SAMPLE_SOURCES = {"AAA": "arch.data.default", "BAA": "arch.data.default", "VIXCLS": "arch.data.vix",
                  "FF_RF": "arch.data.frenchdata"}
CASH_SERIES_ONLINE = "FF_RF_D"
CASH_SERIES_OFFLINE = "FF_RF"


def series_info(name: str) -> MacroSeries:
    """The catalog entry of ``name``; an id outside it is a daily series in FRED's own units (said in the unit)."""
    return CATALOG.get(name) or MacroSeries(name, "daily", "as FRED publishes it")


def is_sample(source: str) -> bool:
    return source.startswith("sample:")


# ---------------------------------------------------------------------------------------------- online
def _checked(frame: pd.DataFrame, name: str, where: str) -> pd.DataFrame:
    """A reader's answer as (date, value) rows, or one sentence saying why it is not a series."""
    if not isinstance(frame.index, pd.DatetimeIndex | pd.PeriodIndex) or name not in frame.columns:
        raise MacroSourceError(f"{where} did not answer with a {name} series (an error page instead of CSV?): nothing "
                               f"of {name} was stored; check the id in REGIME_MACRO_SERIES or try again later.")
    values = pd.to_numeric(frame[name], errors="coerce")
    index = frame.index.to_timestamp() if isinstance(frame.index, pd.PeriodIndex) else frame.index
    garbage = frame[name].notna() & values.isna()
    if garbage.any():
        raise MacroSourceError(f"{where} answered {name} with a value that is not a number on "
                               f"{index[garbage.to_numpy()][0].date()}: nothing of {name} was stored.")
    return pd.DataFrame({"date": index.date, "value": values.to_numpy(dtype=float)})


def fred_frame(name: str, start: dt.date, end: dt.date, reader: Callable | None = None) -> pd.DataFrame:
    """One FRED series start … end through pandas-datareader (``"."`` → missing), validated."""
    from pandas_datareader.fred import FredReader

    make = reader or FredReader
    try:
        frame = make(name, start=pd.Timestamp(start), end=pd.Timestamp(end), retry_count=1, pause=0.1,
                     timeout=20).read()
    except Exception as exc:  # the reader raises RemoteDataError, OSError, parser errors, TypeError on HTML
        kind = SourceUnreachable if _unreachable(exc) else MacroSourceError
        raise kind(f"FRED could not serve {name} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}):"
                   " nothing of it was stored; check the network or set REGIME_SOURCE=sample.") from None
    return _checked(frame, name, "FRED")


def famafrench_daily_rf(start: dt.date, end: dt.date, reader: Callable | None = None) -> pd.DataFrame:
    """The Fama–French daily risk-free rate (percent a day) through pandas-datareader, validated."""
    from pandas_datareader.famafrench import FamaFrenchReader

    make = reader or FamaFrenchReader
    try:
        tables = make("F-F_Research_Data_Factors_daily", start=pd.Timestamp(start), end=pd.Timestamp(end),
                      retry_count=1, pause=0.1, timeout=20).read()
        frame = tables[0].rename(columns=str.strip)
    except Exception as exc:
        raise MacroSourceError(f"the Fama–French library could not serve the daily risk-free rate "
                               f"({type(exc).__name__}): FF_RF_D was not stored; check the network.") from None
    return _checked(frame.rename(columns={"RF": CASH_SERIES_ONLINE}), CASH_SERIES_ONLINE, "the Fama–French library")


# ---------------------------------------------------------------------------------------------- offline
def _yyyymm(index: pd.Index) -> np.ndarray:
    """arch's frenchdata index is the YYYYMM integer; pandas 3 reads it as nanoseconds after 1970 (checked)."""
    if isinstance(index, pd.DatetimeIndex) and (index.year == 1970).all():
        return index.asi8
    return np.asarray(index, dtype=np.int64)


def sample_frame(name: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The bundled series standing in for ``name`` start … end (monthly values dated the month's first day)."""
    if name not in SAMPLE_SOURCES:
        raise MacroSourceError(f"the bundled offline sample has no {name} (it serves {', '.join(SAMPLE_SOURCES)}): "
                               f"{name} is stored only when FRED can be reached.")
    if name in ("AAA", "BAA"):
        import arch.data.default as bundle

        raw = bundle.load()
        frame = pd.DataFrame({"date": raw.index.date, "value": raw[name].to_numpy(float)})
    elif name == "VIXCLS":
        import arch.data.vix as bundle

        raw = bundle.load()
        frame = pd.DataFrame({"date": raw.index.date, "value": raw["vix"].to_numpy(float)})
    else:
        import arch.data.frenchdata as bundle

        raw = bundle.load()
        ym = _yyyymm(raw.index)
        frame = pd.DataFrame({"date": [dt.date(int(v) // 100, int(v) % 100, 1) for v in ym],
                              "value": raw["RF"].to_numpy(float)})
    return frame[(frame["date"] >= start) & (frame["date"] <= end)].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- the chain
@dataclass
class MacroAnswer:
    """What was read for one series: (date, value) rows with NaN for missing, the serving source, warnings."""

    series: str
    frame: pl.DataFrame
    source: str
    warnings: list[str]
    not_asked_after: str | None = None  # served by the sample because FRED could not be reached for this series


def fetch_series(names: list[str], start: dt.date, end: dt.date, mode: str, *, fred: Callable | None = None,
                 famafrench: Callable | None = None) -> dict[str, MacroAnswer | MacroSourceError]:
    """Every series start … end. ``mode``: ``sample`` (the bundle only), ``auto`` (FRED, then the bundle with a
    warning), anything else (FRED only). The cash rate joins the list: ``FF_RF_D`` online, ``FF_RF`` offline."""
    out: dict[str, MacroAnswer | MacroSourceError] = {}

    def frame_of(pdf: pd.DataFrame) -> pl.DataFrame:
        return pl.DataFrame({"date": list(pdf["date"]), "value": pdf["value"].to_numpy(float)},
                            schema={"date": pl.Date, "value": pl.Float64})

    online = mode != "sample"
    wanted = list(dict.fromkeys([*names, CASH_SERIES_ONLINE if online else CASH_SERIES_OFFLINE]))
    failures: dict[str, str] = {}
    unreachable: SourceUnreachable | None = None
    for name in wanted:
        if not online:
            break
        if unreachable is not None and name != CASH_SERIES_ONLINE:  # FRED gave no answer at all: ask it no more
            failures[name] = not_asked_sentence(name, unreachable.args[1])
            out[name] = NotAsked(failures[name], unreachable.args[1])
            continue
        try:
            pdf = famafrench_daily_rf(start, end, famafrench) if name == CASH_SERIES_ONLINE else \
                fred_frame(name, start, end, fred)
            out[name] = MacroAnswer(name, frame_of(pdf), "famafrench" if name == CASH_SERIES_ONLINE else "fred", [])
        except MacroSourceError as exc:
            failures[name] = str(exc)
            out[name] = exc
            if isinstance(exc, SourceUnreachable) and name != CASH_SERIES_ONLINE:
                unreachable = SourceUnreachable(str(exc), name)
    if mode in ("auto", "sample"):
        offline = [n for n in wanted if n not in out or isinstance(out[n], MacroSourceError)]
        if online and CASH_SERIES_ONLINE in failures:
            offline = [n if n != CASH_SERIES_ONLINE else CASH_SERIES_OFFLINE for n in offline]
            out.pop(CASH_SERIES_ONLINE)
        for name in dict.fromkeys(offline):
            why = failures.get(name) or failures.get(CASH_SERIES_ONLINE if name == CASH_SERIES_OFFLINE else "", "")
            after = out[name].after if isinstance(out.get(name), NotAsked) else None
            try:
                pdf = sample_frame(name, start, end)
            except MacroSourceError as exc:
                out[name] = (NotAsked(f"{why} {exc}", after) if after else MacroSourceError(f"{why} {exc}".strip())) \
                    if why else exc
                continue
            note = [f"{why} Serving the bundled SAMPLE instead ({SAMPLE_SOURCES[name]})."] if why else []
            out[name] = MacroAnswer(name, frame_of(pdf), f"sample:{SAMPLE_SOURCES[name]}", note, after)
    return out


def said_once(answers: dict[str, MacroAnswer | MacroSourceError]) -> list[str]:
    """The log lines of one fetch, each source failure said once: a series' own failure or fallback in its own line;
    the series FRED was not asked for after it could not be reached, in one line together (the failure itself is the
    line of the series it failed on). What the sample served and what was not stored, the caller lists."""
    lines, skipped, after = [], [], None
    for name, answer in answers.items():
        asked_after = answer.after if isinstance(answer, NotAsked) else getattr(answer, "not_asked_after", None)
        if asked_after:
            skipped.append(name)
            after = after or asked_after
        elif isinstance(answer, MacroSourceError):
            lines.append(f"not stored: {answer}")
        else:
            lines += [f"macro fallback for {name}: {warning}" for warning in answer.warnings]
    if skipped:
        lines.append(not_asked_sentence(", ".join(skipped), after))
    return lines


__all__ = ["CATALOG", "CASH_SERIES_OFFLINE", "CASH_SERIES_ONLINE", "MacroAnswer", "MacroSeries", "MacroSourceError",
           "NotAsked", "SourceUnreachable", "not_asked_sentence", "said_once",
           "SAMPLE_SOURCES", "famafrench_daily_rf", "fetch_series", "fred_frame", "is_sample", "sample_frame",
           "series_info"]
