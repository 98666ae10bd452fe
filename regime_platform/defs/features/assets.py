"""features: technical features of every session into market.features; check `features_causal`."""
import dagster as dg
import polars as pl

from regime_platform import calendar
from regime_platform import storage as wh
from regime_platform.defs.ingestion.assets import TickerSelection, ohlcv, partition_dates, selected_tickers
from regime_platform.defs.metadata import bullets, markdown_table, per_partition, preview_md
from regime_platform.defs.partitions import daily_asset
from regime_platform.defs.resources import RegimeSettings, Warehouse
from regime_platform.features import causality
from regime_platform.features import macro as macro_features
from regime_platform.features.compute import FEATURE_COLUMNS, LOOKBACK_SESSIONS, features_for_range

CAUSALITY_SPREAD, CAUSALITY_LATEST = 15, 5  # dates over the whole history, and the newest, the check recomputes

@daily_asset(
    group_name="features",
    deps=[ohlcv],
    kinds={"duckdb", "polars"},
    description="Causal technical features (returns, volatility, RSI/MACD/Bollinger identical to TA-Lib, "
                "bursts, drawdown) of every session of every ticker; NULL during warm-up, never 0.",
)
def features(context: dg.AssetExecutionContext, config: TickerSelection, warehouse: Warehouse,
             settings: RegimeSettings) -> dg.MaterializeResult:
    start, end = partition_dates(context)
    wanted = calendar.sessions(start, end)
    computed, skipped = {}, []
    for ticker in selected_tickers(config, settings):
        with warehouse.connect() as con:
            prices = wh.read_price_lookback(con, ticker, end, LOOKBACK_SESSIONS + len(wanted))
        have = set(prices["date"].to_list())
        missing = sorted(set(wanted) - have)
        if len(missing) == len(wanted):  # ohlcv said why in its every_ticker_served check
            skipped.append(ticker)
            continue
        if missing:
            raise ValueError(f"market.ohlcv has no {ticker} bar for {len(missing)} of the sessions {start} … {end} "
                             f"(first: {missing[0]}); materialize ohlcv for them first.")
        context.log.info(f"{ticker}: computing {len(FEATURE_COLUMNS)} features for {len(wanted)} sessions "
                         f"{start} … {end} from {prices.height} bars (lookback {LOOKBACK_SESSIONS})")
        computed[ticker] = (features_for_range(prices, start, end), prices.height - len(wanted))
    if skipped:
        context.log.warning(f"no bars of {', '.join(skipped)} for {start} … {end}: their features are not computed "
                            "(see ohlcv's every_ticker_served check).")
    if not computed:
        raise ValueError(f"market.ohlcv has no bars of any selected ticker for {start} … {end}: materialize ohlcv.")
    with warehouse.connect() as con:
        wh.write_features(con, start, end, {t: table for t, (table, _) in computed.items()})
        total = sum(wh.count_rows(con, "features", t) for t in computed)

    table = next(iter(computed.values()))[0]
    nulls = table.select([pl.col(c).null_count().alias(c) for c in FEATURE_COLUMNS]).transpose(
        include_header=True, header_name="feature", column_names=["null_rows"])
    return dg.MaterializeResult(metadata=per_partition(context, {
        "tickers": ", ".join(computed),
        "tickers_without_bars": ", ".join(skipped) or "none",
        "rows_written": sum(t.height for t, _ in computed.values()),
        "first_date": str(table["date"].min()),
        "last_date": str(table["date"].max()),
        "lookback_rows_read": sum(n for _, n in computed.values()),
        "null_counts": dg.MetadataValue.md(f"{table['ticker'][0]} (warm-up NULLs):\n\n" + markdown_table(nulls)),
        "preview": preview_md(table.select("date", "ticker", "ret_1d", "vol_20d", "rsi_14", "macd_hist_pct",
                                           "bb_pctb", "drawdown_252")),
        "dagster/row_count": int(total),
    }))


@dg.asset_check(asset=features, pool="duckdb", blocking=True,
                description=f"Per ticker: recomputes {CAUSALITY_SPREAD} stored rows spread over the whole history "
                            f"and the {CAUSALITY_LATEST} newest from prices truncated at each date, and compares them "
                            "with what is stored and with a recompute that sees later prices (1e-12 relative, same "
                            "NULLs); the macro features of the same dates from the market.macro rows usable by then "
                            "(usable_from recomputed by the point-in-time rule).")
def features_causal(warehouse: Warehouse, settings: RegimeSettings) -> dg.AssetCheckResult:
    problems, checked = [], {}
    with warehouse.connect() as con:
        macro_rows = wh.read_macro(con, macro_features.MACRO_SERIES)
    for ticker in settings.settings().tickers:
        with warehouse.connect() as con:
            stored = wh.read_features(con, ticker)
            prices = wh.read_prices(con, ticker)
        if stored.is_empty():
            continue
        dates = causality.spread_dates(stored["date"].to_list(), CAUSALITY_SPREAD, CAUSALITY_LATEST)
        problems += [f"{ticker}: {p}" for p in causality.causality_problems(prices, stored, dates)]
        problems += [f"{ticker}: {p}" for p in macro_features.causality_problems(
            macro_rows, stored["date"].to_list(), dates, settings.settings().macro_lag)]
        checked[ticker] = ", ".join(str(d) for d in dates)
    if not checked:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "no stored features: materialize features"})
    return dg.AssetCheckResult(passed=not problems, metadata={
        "dates_checked": dg.MetadataValue.md("\n".join(f"- {t}: {d}" for t, d in checked.items())),
        "macro_rows_checked": macro_rows.height,
        "problems": bullets(problems),
    })
