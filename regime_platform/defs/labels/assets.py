"""labels: the regime of every session of one ticker (the user's file or a generated labeler) into
market.regime_labels, one partition per ticker."""
import dagster as dg
import polars as pl

from regime_platform import labels
from regime_platform import storage as wh
from regime_platform.defs.features.assets import features
from regime_platform.defs.metadata import bullets, markdown_table
from regime_platform.defs.partitions import ticker_asset, ticker_check, ticker_partitions
from regime_platform.defs.resources import RegimeSettings, Warehouse
from regime_platform.labels.user_file import file_fingerprint
from regime_platform.settings import check_ticker_partition


@ticker_asset(
    group_name="labels",
    deps=[dg.AssetDep(features, partition_mapping=dg.AllPartitionMapping())],
    kinds={"duckdb"},
    description="The regime of every session of the partition's ticker: your data/regimes/regime_labels_<TICKER>.csv "
                "(or regime_labels.csv with one ticker) when present, strictly validated, else a generated labeler "
                "(REGIME_LABELER, default `jump`) fit on the ticker's labelled history. `regime` is the target (may "
                "be hindsight); `known_regime` what was knowable at t.",
)
def regime_labels(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: RegimeSettings) -> dg.MaterializeResult:
    s, ticker = settings.settings(), check_ticker_partition(context.partition_key)
    with warehouse.connect() as con:
        frame = wh.read_labeler_frame(con, ticker)
    if frame.is_empty():
        raise ValueError(f"market.features has no rows of {ticker}: add {ticker} to REGIME_TICKERS and materialize "
                         "ohlcv and features first (`make run` does).")
    path = s.user_labels_path(ticker)
    if path.exists():
        context.log.info(f"{ticker}: using your labels file {path} (REGIME_LABELER={s.labeler} is ignored)")
    else:
        context.log.info(f"{ticker}: no labels file at {path}: generating labels with `{s.labeler}`")
    result = labels.assign(frame, path, s.labeler, s.label_lag)
    prices = result.table.join(frame.select("date", "adj_close"), on="date", how="left")
    with warehouse.connect() as con:
        wh.replace_regime_labels(con, ticker, result.table)
    balance = labels.class_balance(result.table["regime"], labels.configured_regimes(result.labeler, result.table["regime"]))
    transitions = pl.DataFrame(result.profile.transition_matrix,
                               schema=[f"to {i}" for i in range(result.profile.transition_matrix.shape[0])])
    return dg.MaterializeResult(metadata={
        "ticker": ticker,
        "labeler": result.labeler,
        "fit_span": f"{result.fit_start} … {result.fit_end}" if result.fit_start else "user labels: no fit",
        "rows": result.table.height,
        "first_date": str(result.table["date"].min()),
        "last_date": str(result.table["date"].max()),
        "regimes": dg.MetadataValue.md(f"**{ticker}**\n\n" + result.profile.to_markdown()),
        "transition_matrix": dg.MetadataValue.md(markdown_table(
            transitions.with_columns(pl.Series("from", range(transitions.height))).select("from", *transitions.columns))),
        "state_mapping": dg.MetadataValue.json({str(k): v for k, v in (result.state_mapping or {}).items()}),
        "class_shares": dg.MetadataValue.json({str(k): round(v, 4) for k, v in balance.shares.items()}),
        "known_equals_target_share": float((prices["regime"] == prices["known_regime"]).mean() or 0.0),
        "dagster/row_count": result.table.height,
    })


@ticker_check(asset=regime_labels, blocking=True,
              description="ERROR when a regime id in 0..K−1 has no rows of the ticker, K being the labeler's "
                          "configured number of regimes (a user's file: its declared ids); WARN when one is under 5 %.")
def label_class_balance(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    ticker = context.partition_key
    with warehouse.connect() as con:
        stored = wh.read_regime_labels(con, ticker)
    if stored.is_empty():
        return dg.AssetCheckResult(passed=False, metadata={"problem": f"market.regime_labels has no rows of {ticker}: "
                                                                      "materialize regime_labels for it"})
    labeler = stored["labeler"][0]
    K = labels.configured_regimes(labeler, stored["regime"])
    balance = labels.class_balance(stored["regime"], K)
    warnings, errors = balance.problems(f"market.regime_labels ({ticker})", "rows")
    severity = dg.AssetCheckSeverity.ERROR if balance.missing else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        passed=not balance.missing and not balance.rare, severity=severity,
        metadata={"ticker": ticker, "labeler": labeler, "configured_regimes": K,
                  "counts": dg.MetadataValue.json({str(k): v for k, v in balance.counts.items()}),
                  "missing": str(balance.missing), "under_5_percent": str(balance.rare),
                  "problems": bullets(errors + warnings)})


@ticker_check(asset=regime_labels, blocking=True,
              description="ERROR when a session of the ticker between its first and last label date that has "
                          "complete features carries no label.")
def labels_cover_sessions(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        gaps = wh.unlabelled_sessions(con, context.partition_key)
    return dg.AssetCheckResult(passed=gaps.is_empty(), metadata={
        "unlabelled_sessions": gaps.height,
        "first_unlabelled": str(gaps["date"][0]) if gaps.height else "none"})


def labels_file_fingerprint(settings: RegimeSettings, ticker: str) -> str:
    return file_fingerprint(settings.settings().user_labels_path(ticker)) or "absent"


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,  # README: turn it on in the UI (Automation)
    asset_selection=dg.AssetSelection.assets(regime_labels).downstream().required_multi_asset_neighbors()
    - dg.AssetSelection.groups("forecasting"),
    description="For each ticker of REGIME_TICKERS: requests its labels and every per-ticker asset below them when "
                "its data/regimes labels file appears, changes or is removed (content hash).",
)
def labels_file_sensor(context: dg.SensorEvaluationContext, settings: RegimeSettings):
    seen = dict(item.split("=", 1) for item in (context.cursor or "").split(";") if "=" in item)
    registered = set(context.instance.get_dynamic_partitions(ticker_partitions.name))
    requests, now = [], {}
    for ticker in settings.settings().tickers:
        now[ticker] = labels_file_fingerprint(settings, ticker)
        first_look = ticker not in seen and now[ticker] == "absent"
        if ticker in registered and not first_look and now[ticker] != seen.get(ticker):
            requests.append(dg.RunRequest(run_key=f"{ticker}-{now[ticker]}", partition_key=ticker))
    context.update_cursor(";".join(f"{t}={f}" for t, f in now.items()))
    return requests or dg.SkipReason("no labels file changed; stored labels stay in place")
