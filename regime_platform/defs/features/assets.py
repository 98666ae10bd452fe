"""features: technical features of every session into market.features; check `features_causal`."""
import dagster as dg
import polars as pl

from regime_platform import calendar
from regime_platform import storage as wh
from regime_platform.defs.ingestion.assets import ohlcv, partition_dates
from regime_platform.defs.metadata import bullets, markdown_table, preview_md
from regime_platform.defs.partitions import daily_asset
from regime_platform.defs.resources import RegimeSettings, Warehouse
from regime_platform.features import causality
from regime_platform.features.compute import FEATURE_COLUMNS, LOOKBACK_SESSIONS, features_for_range

CAUSALITY_SPREAD, CAUSALITY_LATEST = 15, 5  # dates over the whole history, and the newest, the check recomputes

@daily_asset(
    group_name="features",
    deps=[ohlcv],
    kinds={"duckdb", "polars"},
    description="Causal technical features (returns, volatility, RSI/MACD/Bollinger identical to TA-Lib, "
                "bursts, drawdown) of every session; NULL during warm-up, never 0.",
)
def features(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: RegimeSettings) -> dg.MaterializeResult:
    start, end = partition_dates(context)
    ticker = settings.ticker
    wanted = calendar.sessions(start, end)
    with warehouse.connect() as con:
        prices = wh.read_price_lookback(con, ticker, end, LOOKBACK_SESSIONS + len(wanted))
    missing = sorted(set(wanted) - set(prices["date"].to_list()))
    if missing:
        raise ValueError(f"market.ohlcv has no bar for {len(missing)} of the sessions {start} … {end} "
                         f"(first: {missing[0]}); materialize ohlcv for them first.")
    context.log.info(f"computing {len(FEATURE_COLUMNS)} features for {len(wanted)} sessions {start} … {end} "
                     f"from {prices.height} bars (lookback {LOOKBACK_SESSIONS})")
    table = features_for_range(prices, start, end)
    with warehouse.connect() as con:
        wh.replace_rows(con, "features", table, "ticker = ? AND date BETWEEN ? AND ?", [ticker, start, end])
        total = wh.count_rows(con, "features", ticker)

    nulls = table.select([pl.col(c).null_count().alias(c) for c in FEATURE_COLUMNS]).transpose(
        include_header=True, header_name="feature", column_names=["null_rows"])
    return dg.MaterializeResult(metadata={
        "rows_written": table.height,
        "first_date": str(table["date"].min()),
        "last_date": str(table["date"].max()),
        "lookback_rows_read": prices.height - len(wanted),
        "null_counts": dg.MetadataValue.md(markdown_table(nulls)),
        "preview": preview_md(table.select("date", "ret_1d", "vol_20d", "rsi_14", "macd_hist_pct", "bb_pctb",
                                           "drawdown_252")),
        "dagster/row_count": int(total),
    })


@dg.asset_check(asset=features, pool="duckdb", blocking=True,
                description=f"Recomputes {CAUSALITY_SPREAD} stored rows spread over the whole history and the "
                            f"{CAUSALITY_LATEST} newest from prices truncated at each date, and compares them with "
                            "what is stored and with a recompute that sees later prices (1e-12 relative, same NULLs).")
def features_causal(warehouse: Warehouse, settings: RegimeSettings) -> dg.AssetCheckResult:
    ticker = settings.ticker
    with warehouse.connect() as con:
        stored = wh.read_features(con, ticker)
        prices = wh.read_prices(con, ticker)
    if stored.is_empty():
        return dg.AssetCheckResult(passed=False, metadata={"problem": "no stored features: materialize features"})
    dates = causality.spread_dates(stored["date"].to_list(), CAUSALITY_SPREAD, CAUSALITY_LATEST)
    problems = causality.causality_problems(prices, stored, dates)
    return dg.AssetCheckResult(passed=not problems, metadata={
        "dates_checked": dg.MetadataValue.md(", ".join(str(d) for d in dates)),
        "problems": bullets(problems),
    })
