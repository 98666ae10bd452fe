"""features: technical features of every session into market.features; check `features_causal`."""
import dagster as dg
import polars as pl

from regime_platform import calendar, causality, warehouse as wh
from regime_platform.defs.ingestion.assets import ohlcv, partition_dates
from regime_platform.defs.metadata import markdown_table, preview_md
from regime_platform.defs.partitions import session_partitions
from regime_platform.defs.resources import RegimeSettings, Warehouse
from regime_platform.features import FEATURE_COLUMNS, LOOKBACK_SESSIONS, features_for_range

CAUSALITY_SAMPLE = 20  # the most recent stored rows the check recomputes from truncated prices

wh.register_table("features", "date DATE NOT NULL, ticker VARCHAR NOT NULL, "
                  + ", ".join(f"{c} DOUBLE" for c in FEATURE_COLUMNS) + ", PRIMARY KEY (ticker, date)")


def read_prices(con, ticker: str, end, sessions_needed: int) -> pl.DataFrame:
    """The last `sessions_needed` stored bars up to `end`: one range costs O(range + lookback), not O(history)."""
    return con.execute(
        "SELECT * FROM (SELECT date, ticker, adj_close, volume FROM market.ohlcv WHERE ticker = ? AND date <= ? "
        "ORDER BY date DESC LIMIT ?) ORDER BY date", [ticker, end, sessions_needed]).pl()


@dg.asset(
    group_name="features",
    partitions_def=session_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[ohlcv],
    pool="duckdb",
    kinds={"duckdb", "polars"},
    description="Causal technical features (returns, volatility, RSI/MACD/Bollinger identical to TA-Lib, "
                "bursts, drawdown) of every session; NULL during warm-up, never 0 (DESIGN §2).",
)
def features(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: RegimeSettings) -> dg.MaterializeResult:
    start, end = partition_dates(context)
    ticker = settings.ticker
    wanted = calendar.sessions(start, end)
    with warehouse.connect() as con:
        prices = read_prices(con, ticker, end, LOOKBACK_SESSIONS + len(wanted))
    missing = sorted(set(wanted) - set(prices["date"].to_list()))
    if missing:
        raise ValueError(f"market.ohlcv has no bar for {len(missing)} of the sessions {start} … {end} "
                         f"(first: {missing[0]}); materialize ohlcv for them first.")
    context.log.info(f"computing {len(FEATURE_COLUMNS)} features for {len(wanted)} sessions {start} … {end} "
                     f"from {prices.height} bars (lookback {LOOKBACK_SESSIONS})")
    table = features_for_range(prices, start, end)
    with warehouse.connect() as con:
        wh.replace_rows(con, "features", table, "ticker = ? AND date BETWEEN ? AND ?", [ticker, start, end])
        total = con.execute("SELECT count(*) FROM market.features WHERE ticker = ?", [ticker]).fetchone()[0]

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
                description=f"Recomputes the {CAUSALITY_SAMPLE} most recent stored rows from prices truncated at "
                            "each date and compares with what is stored (1e-12 relative, same NULLs).")
def features_causal(warehouse: Warehouse, settings: RegimeSettings) -> dg.AssetCheckResult:
    ticker = settings.ticker
    with warehouse.connect() as con:
        stored = con.execute("SELECT * FROM (SELECT * FROM market.features WHERE ticker = ? ORDER BY date DESC "
                             "LIMIT ?) ORDER BY date", [ticker, CAUSALITY_SAMPLE]).pl()
        if stored.is_empty():
            return dg.AssetCheckResult(passed=False, metadata={"problem": "no stored features"})
        prices = read_prices(con, ticker, stored["date"].max(), LOOKBACK_SESSIONS + CAUSALITY_SAMPLE + 1)
    problems = causality.causality_problems(prices, stored, stored["date"].to_list())
    return dg.AssetCheckResult(passed=not problems, metadata={
        "dates_checked": f"{stored['date'].min()} … {stored['date'].max()}",
        "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none"),
    })
