"""labels: the regime of every session (the user's file or a generated labeler) into market.regime_labels."""
import hashlib
from pathlib import Path

import dagster as dg
import polars as pl

from regime_platform import labels
from regime_platform import storage as wh
from regime_platform.defs.features.assets import features
from regime_platform.defs.metadata import bullets, markdown_table
from regime_platform.defs.resources import RegimeSettings, Warehouse


@dg.asset(
    group_name="labels",
    deps=[features],
    pool="duckdb",
    kinds={"duckdb"},
    description="The regime of every session: your data/regimes/regime_labels.csv when present (strictly "
                "validated), else a generated labeler (REGIME_LABELER, default `jump`) fit on the labelled "
                "history. `regime` is the target (may be hindsight); `known_regime` what was knowable at t.",
)
def regime_labels(context: dg.AssetExecutionContext, warehouse: Warehouse, settings: RegimeSettings) -> dg.MaterializeResult:
    s = settings.settings()
    with warehouse.connect() as con:
        frame = wh.read_labeler_frame(con, s.ticker)
    if frame.is_empty():
        raise ValueError("market.features is empty: materialize ohlcv and features first (`make run` does).")
    if s.user_labels_path.exists():
        context.log.info(f"using your labels file {s.user_labels_path} (REGIME_LABELER={s.labeler} is ignored)")
    else:
        context.log.info(f"no labels file at {s.user_labels_path}: generating labels with `{s.labeler}`")
    result = labels.assign(frame, s.user_labels_path, s.labeler, s.label_lag)
    prices = result.table.join(frame.select("date", "adj_close"), on="date", how="left")
    with warehouse.connect() as con:
        wh.replace_rows(con, "regime_labels", result.table)
    balance = labels.class_balance(result.table["regime"], labels.configured_regimes(result.labeler, result.table["regime"]))
    transitions = pl.DataFrame(result.profile.transition_matrix,
                               schema=[f"to {i}" for i in range(result.profile.transition_matrix.shape[0])])
    return dg.MaterializeResult(metadata={
        "labeler": result.labeler,
        "fit_span": f"{result.fit_start} … {result.fit_end}" if result.fit_start else "user labels: no fit",
        "rows": result.table.height,
        "first_date": str(result.table["date"].min()),
        "last_date": str(result.table["date"].max()),
        "regimes": dg.MetadataValue.md(result.profile.to_markdown()),
        "transition_matrix": dg.MetadataValue.md(markdown_table(
            transitions.with_columns(pl.Series("from", range(transitions.height))).select("from", *transitions.columns))),
        "state_mapping": dg.MetadataValue.json({str(k): v for k, v in (result.state_mapping or {}).items()}),
        "class_shares": dg.MetadataValue.json({str(k): round(v, 4) for k, v in balance.shares.items()}),
        "known_equals_target_share": float((prices["regime"] == prices["known_regime"]).mean() or 0.0),
        "dagster/row_count": result.table.height,
    })


@dg.asset_check(asset=regime_labels, pool="duckdb", blocking=True,
                description="ERROR when a regime id in 0..K−1 has no rows, K being the labeler's configured number "
                            "of regimes (a user's file: its declared ids); WARN when one is under 5 % of rows.")
def label_class_balance(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        stored = wh.read_regime_labels(con)
    if stored.is_empty():
        return dg.AssetCheckResult(passed=False, metadata={"problem": "market.regime_labels is empty: materialize "
                                                                      "regime_labels"})
    labeler = stored["labeler"][0]
    K = labels.configured_regimes(labeler, stored["regime"])
    balance = labels.class_balance(stored["regime"], K)
    warnings, errors = balance.problems("market.regime_labels", "rows")
    severity = dg.AssetCheckSeverity.ERROR if balance.missing else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        passed=not balance.missing and not balance.rare, severity=severity,
        metadata={"labeler": labeler, "configured_regimes": K,
                  "counts": dg.MetadataValue.json({str(k): v for k, v in balance.counts.items()}),
                  "missing": str(balance.missing), "under_5_percent": str(balance.rare),
                  "problems": bullets(errors + warnings)})


@dg.asset_check(asset=regime_labels, pool="duckdb", blocking=True,
                description="ERROR when a session between the first and last label date that has complete "
                            "features carries no label.")
def labels_cover_sessions(warehouse: Warehouse, settings: RegimeSettings) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        gaps = wh.unlabelled_sessions(con, settings.ticker)
    return dg.AssetCheckResult(passed=gaps.is_empty(), metadata={
        "unlabelled_sessions": gaps.height,
        "first_unlabelled": str(gaps["date"][0]) if gaps.height else "none"})


def labels_file_fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,  # README: turn it on in the UI (Automation)
    asset_selection=dg.AssetSelection.assets(regime_labels).downstream().required_multi_asset_neighbors()
    - dg.AssetSelection.groups("forecasting"),
    description="Requests the labels and every non-partitioned asset below them when "
                "data/regimes/regime_labels.csv appears, changes or is removed (content hash).",
)
def labels_file_sensor(context: dg.SensorEvaluationContext, settings: RegimeSettings):
    fingerprint = labels_file_fingerprint(settings.settings().user_labels_path)
    if context.cursor is None and fingerprint == "absent":
        context.update_cursor(fingerprint)
        return dg.SkipReason("no labels file yet; generated labels stay in place")
    if fingerprint == context.cursor:
        return dg.SkipReason("labels file unchanged")
    context.update_cursor(fingerprint)
    return dg.RunRequest(run_key=fingerprint)
