"""From a source's bars to rows of market.ohlcv: chain-linked adjusted closes, revisions, quality rules.

The adjusted close is a chain-linked index. A full backfill takes the vendor's adjusted close
from one download; each later session gets adj_close[t] = adj_close[t-1] (stored) × a[t] / a[t-1], with a
the vendor's adjusted close in the same download, so stored rows never change when new days arrive.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import polars as pl

from regime_platform import calendar

REVISION_TOLERANCE = 1e-6  # relative difference in the raw close that counts as a vendor revision
MOVE_LIMIT = 0.25          # a daily move beyond 25 % is worth a warning
SIGMA_LIMIT = 10.0         # … and so is one beyond 10 daily sigmas (sigma from the 60 sessions before)


class IngestError(RuntimeError):
    """The fetched bars cannot be stored as asked; the message says why and what to run instead."""


@dataclass
class IngestPlan:
    """What an ingestion of sessions start…end needs: a full backfill, or an increment chained to `previous`."""

    start: dt.date
    end: dt.date
    previous: dict | None  # the stored row (date, close, adj_close, source) of the session before start

    @property
    def is_full_backfill(self) -> bool:
        return self.previous is None

    @property
    def fetch_start(self) -> dt.date:
        return self.previous["date"] if self.previous else self.start


def plan_ingest(start: dt.date, end: dt.date, stored_dates_before: list[dt.date],
                previous: dict | None) -> IngestPlan:
    """Decide between a full backfill (nothing stored before start) and a chained increment.

    `stored_dates_before` are the stored session dates earlier than start; `previous` is the stored row
    of the session right before start, if any.
    """
    if not stored_dates_before:
        return IngestPlan(start, end, None)
    if previous is None:
        expected = calendar.sessions(min(stored_dates_before), calendar.previous_session(start))
        have = set(stored_dates_before)
        missing = next(d for d in expected if d not in have)
        raise IngestError(
            f"cannot chain {start}: the previous session {calendar.previous_session(start)} is not stored "
            f"(first missing session: {missing}); re-run the full backfill with `make run`."
        )
    return IngestPlan(start, end, previous)


@dataclass
class IngestResult:
    rows: pl.DataFrame
    revisions: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def build_rows(plan: IngestPlan, bars: pl.DataFrame, source: str, ticker: str,
               ingested_at: dt.datetime) -> IngestResult:
    """Rows for market.ohlcv for plan.start…plan.end from `bars` (normalized OHLCV of one download)."""
    wanted = calendar.sessions(plan.start, plan.end)
    served = set(bars["date"].to_list())
    missing = [d for d in wanted if d not in served]
    if missing:
        last = bars["date"].max()
        raise IngestError(
            f"{source} cannot serve {len(missing)} of the requested sessions {plan.start}…{plan.end} "
            f"(first missing: {missing[0]}; it serves up to {last}); nothing was stored — materialize only "
            "closed sessions the source covers (`make run` picks them for you)."
        )
    notes: list[str] = []
    revisions = pl.DataFrame(schema={"ticker": pl.Utf8, "date": pl.Date, "stored_close": pl.Float64,
                                     "vendor_close": pl.Float64, "source": pl.Utf8, "detected_at": pl.Datetime})
    if plan.is_full_backfill:
        fresh = bars.filter(pl.col("date").is_between(plan.start, plan.end))
    else:
        prev = plan.previous
        if prev["source"] != source:
            raise IngestError(
                f"the stored session {prev['date']} came from {prev['source']} but this fetch came from {source}; "
                "prices from two sources are never chained — re-run the full backfill with `make run` "
                "(or use a fresh REGIME_DATA_DIR)."
            )
        overlap = bars.filter(pl.col("date") == prev["date"])
        if overlap.is_empty():
            raise IngestError(f"{source} did not return the overlap session {prev['date']} needed to chain "
                              f"{plan.start}; re-run the full backfill with `make run`.")
        vendor_close = overlap["close"][0]
        if not math.isclose(vendor_close, prev["close"], rel_tol=REVISION_TOLERANCE):
            notes.append(f"vendor revision: {source} now reports close {vendor_close:.6g} for {prev['date']}, "
                         f"stored {prev['close']:.6g}; re-run the full backfill if you want the revised history.")
            revisions = pl.DataFrame({"ticker": [ticker], "date": [prev["date"]], "stored_close": [prev["close"]],
                                      "vendor_close": [vendor_close], "source": [source],
                                      "detected_at": [ingested_at]})
        a_prev = overlap["adj_close"][0]
        fresh = bars.filter(pl.col("date").is_between(plan.start, plan.end)).with_columns(
            (pl.col("adj_close") * (prev["adj_close"] / a_prev)).alias("adj_close"))
    rows = fresh.select(
        "date", pl.lit(ticker).alias("ticker"), "open", "high", "low", "close", "adj_close", "volume",
        pl.lit(source).alias("source"), pl.lit(ingested_at).cast(pl.Datetime("us")).alias("ingested_at"),
    ).sort("date")
    return IngestResult(rows, revisions, notes)


@dataclass
class QualityReport:
    errors: list[str]
    warnings: list[str]
    rows: int

    @property
    def passed(self) -> bool:
        return not self.errors


def _first(frame: pl.DataFrame, limit: int = 3) -> str:
    return ", ".join(str(d) for d in frame["date"].head(limit).to_list()) + (" …" if frame.height > limit else "")


def quality_report(stored: pl.DataFrame, revisions: pl.DataFrame | None = None) -> QualityReport:
    """The ohlcv_quality rules over stored rows of one ticker."""
    errors: list[str] = []
    warnings: list[str] = []
    if stored.is_empty():
        return QualityReport(["no stored rows: materialize ohlcv first"], [], 0)
    df = stored.sort("date")
    price_cols = ["open", "high", "low", "close", "adj_close"]
    checks = [
        ("null fields", pl.any_horizontal(pl.col([*price_cols, "volume", "source"]).is_null())),
        ("non-positive prices", pl.min_horizontal(price_cols) <= 0),
        ("low above open/close", pl.col("low") > pl.min_horizontal("open", "close")),
        ("high below open/close", pl.col("high") < pl.max_horizontal("open", "close")),
        ("negative volume", pl.col("volume") < 0),
    ]
    for label, expr in checks:
        bad = df.filter(expr.fill_null(True) if label != "null fields" else expr)
        if bad.height:
            errors.append(f"{bad.height} rows with {label}: {_first(bad)}")
    dupes = df.filter(pl.struct("ticker", "date").is_duplicated())
    if dupes.height:
        errors.append(f"{dupes.height} duplicate (ticker, date) rows: {_first(dupes)}")
    expected = calendar.sessions(df["date"].min(), df["date"].max())
    have = set(df["date"].to_list())
    missing = [d for d in expected if d not in have]
    if missing:
        errors.append(f"{len(missing)} XNYS sessions missing between {df['date'].min()} and {df['date'].max()}: "
                      + ", ".join(map(str, missing[:3])) + (" …" if len(missing) > 3 else ""))
    moves = df.with_columns(r=(pl.col("adj_close") / pl.col("adj_close").shift(1)).log()).with_columns(
        sigma=pl.col("r").shift(1).rolling_std(60))
    big = moves.filter((pl.col("r").abs() > math.log1p(MOVE_LIMIT)) |
                       (pl.col("r").abs() > SIGMA_LIMIT * pl.col("sigma")))
    if big.height:
        warnings.append(f"{big.height} daily moves beyond 25 % or 10 sigmas: {_first(big)}")
    if revisions is not None and revisions.height:
        warnings.append(f"{revisions.height} vendor revisions detected (stored close differs from the vendor's "
                        f"latest): {_first(revisions)}; re-run the full backfill if you want the revised history")
    return QualityReport(errors, warnings, df.height)
