"""Chain-linked adjusted closes, increments that refuse to chain, and the quality rules (DESIGN §3b)."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from regime_platform.ingestion.bars import IngestError, build_rows, plan_ingest, quality_report

NOW = dt.datetime(2026, 1, 1)


def vendor(sample_bars, start, end, scale=1.0):
    """The sample as a vendor would send it; `scale` rescales adjusted history (a dividend was paid)."""
    return sample_bars.filter(pl.col("date").is_between(start, end)).with_columns(
        pl.col("adj_close") * scale)


def test_full_backfill_takes_the_vendor_adjusted_close(sample_bars):
    plan = plan_ingest(dt.date(2018, 1, 2), dt.date(2018, 1, 31), [], None)
    rows = build_rows(plan, vendor(sample_bars, plan.fetch_start, plan.end), "v", "SPY", NOW).rows
    assert rows.height == 21 and rows["ticker"].unique().to_list() == ["SPY"]
    assert rows["adj_close"].to_list() == vendor(sample_bars, plan.start, plan.end)["adj_close"].to_list()


def test_increment_chains_on_the_stored_basis_even_after_a_rescale(sample_bars):
    first = build_rows(plan_ingest(dt.date(2018, 1, 2), dt.date(2018, 1, 31), [], None),
                       vendor(sample_bars, dt.date(2018, 1, 2), dt.date(2018, 1, 31)), "v", "SPY", NOW).rows
    prev = first.tail(1).to_dicts()[0]
    plan = plan_ingest(dt.date(2018, 2, 1), dt.date(2018, 2, 28), first["date"].to_list(), prev)
    assert plan.fetch_start == dt.date(2018, 1, 31)  # one stored session of overlap
    # The vendor has rescaled all adjusted history by 0.97 since (a dividend); raw closes are unchanged.
    result = build_rows(plan, vendor(sample_bars, plan.fetch_start, plan.end, scale=0.97), "v", "SPY", NOW)
    full = vendor(sample_bars, dt.date(2018, 2, 1), dt.date(2018, 2, 28))
    assert result.rows["adj_close"].to_list() == pytest.approx(full["adj_close"].to_list(), rel=1e-12)
    assert result.revisions.is_empty() and result.notes == []


def test_increment_detects_a_vendor_revision(sample_bars):
    prev = {"date": dt.date(2018, 1, 31), "close": 2800.0, "adj_close": 2800.0, "source": "v"}
    plan = plan_ingest(dt.date(2018, 2, 1), dt.date(2018, 2, 5), [dt.date(2018, 1, 31)], prev)
    result = build_rows(plan, vendor(sample_bars, plan.fetch_start, plan.end), "v", "SPY", NOW)
    assert result.revisions.height == 1 and "vendor revision" in result.notes[0]


def test_increment_refuses_another_source(sample_bars):
    prev = {"date": dt.date(2018, 1, 31), "close": 2823.81, "adj_close": 2823.81, "source": "sample:^GSPC"}
    plan = plan_ingest(dt.date(2018, 2, 1), dt.date(2018, 2, 5), [dt.date(2018, 1, 31)], prev)
    with pytest.raises(IngestError, match="never chained.*full backfill"):
        build_rows(plan, vendor(sample_bars, plan.fetch_start, plan.end), "yfinance", "SPY", NOW)


def test_increment_names_the_first_missing_session():
    stored = [dt.date(2018, 1, 2), dt.date(2018, 1, 3)]  # 2018-01-04 onwards missing
    with pytest.raises(IngestError, match="first missing session: 2018-01-04"):
        plan_ingest(dt.date(2018, 2, 1), dt.date(2018, 2, 5), stored, None)


def test_a_session_the_source_cannot_serve_stores_nothing(sample_bars):
    plan = plan_ingest(dt.date(2018, 12, 20), dt.date(2019, 1, 4), [], None)
    with pytest.raises(IngestError, match="first missing: 2019-01-02"):
        build_rows(plan, vendor(sample_bars, plan.start, plan.end), "sample:^GSPC", "SPY", NOW)


@pytest.fixture
def stored(sample_bars):
    plan = plan_ingest(dt.date(2017, 1, 3), dt.date(2018, 12, 31), [], None)
    return build_rows(plan, vendor(sample_bars, plan.start, plan.end), "sample:^GSPC", "SPY", NOW).rows


def test_quality_passes_on_real_bars(stored):
    report = quality_report(stored)
    assert report.passed and report.warnings == [] and report.rows == 502


def _corrupt(stored, day, **values):
    return stored.with_columns(**{c: pl.when(pl.col("date") == day).then(pl.lit(v)).otherwise(pl.col(c))
                                  for c, v in values.items()})


@pytest.mark.parametrize("values,needle", [
    ({"close": None}, "null fields"),
    ({"open": -1.0}, "non-positive prices"),
    ({"low": 5000.0}, "low above open/close"),
    ({"high": 10.0}, "high below open/close"),
    ({"volume": -5.0}, "negative volume"),
])
def test_quality_errors_on_corrupted_bars(stored, values, needle):
    report = quality_report(_corrupt(stored, dt.date(2018, 3, 1), **values))
    assert not report.passed and needle in " ".join(report.errors) and "2018-03-01" in " ".join(report.errors)


def test_quality_errors_on_duplicates_and_gaps(stored):
    dup = pl.concat([stored, stored.filter(pl.col("date") == dt.date(2018, 3, 1))])
    assert "duplicate" in " ".join(quality_report(dup).errors)
    gap = stored.filter(pl.col("date") != dt.date(2018, 3, 1))
    assert "1 XNYS sessions missing" in " ".join(quality_report(gap).errors)


def test_quality_warns_on_a_huge_move_and_on_revisions(stored):
    jumped = stored.with_columns(pl.when(pl.col("date") >= dt.date(2018, 3, 1)).then(pl.col("adj_close") * 1.4)
                                 .otherwise(pl.col("adj_close")).alias("adj_close"))
    report = quality_report(jumped)
    assert report.passed and "25 %" in report.warnings[0]
    revisions = pl.DataFrame({"date": [dt.date(2018, 3, 1)]})
    assert "vendor revisions" in quality_report(stored, revisions).warnings[0]
