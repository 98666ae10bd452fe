"""labels: the regime of every session (the user's file or a generated labeler) into market.regime_labels."""
import hashlib
from pathlib import Path

import dagster as dg
import polars as pl

from regime_platform import labels, warehouse as wh
from regime_platform.defs.features.assets import features
from regime_platform.defs.metadata import markdown_table
from regime_platform.defs.resources import RegimeSettings, Warehouse

wh.register_table("regime_labels", "date DATE NOT NULL PRIMARY KEY, regime INTEGER NOT NULL, known_regime INTEGER, "
                  "regime_name VARCHAR, labeler VARCHAR NOT NULL, fit_start DATE, fit_end DATE")


def labeler_frame(con, ticker: str) -> pl.DataFrame:
    """What a generated labeler reads: every session's adjusted close and features, in date order."""
    return con.execute(
        "SELECT f.*, o.adj_close FROM market.features f JOIN market.ohlcv o USING (ticker, date) "
        "WHERE f.ticker = ? ORDER BY date", [ticker]).pl()


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
        frame = labeler_frame(con, s.ticker)
    if frame.is_empty():
        raise ValueError("market.features is empty: materialize ohlcv and features first (`make run` does).")
    if s.user_labels_path.exists():
        context.log.info(f"using your labels file {s.user_labels_path} (REGIME_LABELER={s.labeler} is ignored)")
        user = labels.read_user_labels(s.user_labels_path, sessions=frame["date"].to_list())
        result = labels.assign_user(user, frame, label_lag=s.label_lag)
    else:
        context.log.info(f"no labels file at {s.user_labels_path}: generating labels with `{s.labeler}`")
        result = labels.assign_generated(frame, s.labeler)
    prices = result.table.join(frame.select("date", "adj_close"), on="date", how="left")
    with warehouse.connect() as con:
        wh.replace_rows(con, "regime_labels", result.table)
    balance = labels.class_balance(result.table["regime"], result.table["regime"].max() + 1)
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
        "class_shares": dg.MetadataValue.json({str(k): round(v, 4) for k, v in balance["shares"].items()}),
        "known_equals_target_share": float((prices["regime"] == prices["known_regime"]).mean() or 0.0),
        "dagster/row_count": result.table.height,
    })


@dg.asset_check(asset=regime_labels, pool="duckdb", blocking=True,
                description="ERROR when a regime id in 0..K−1 has no rows; WARN when one is under 5 % of rows.")
def label_class_balance(warehouse: Warehouse) -> dg.AssetCheckResult:
    stored = warehouse.read("SELECT regime FROM market.regime_labels")
    if stored.is_empty():
        return dg.AssetCheckResult(passed=False, metadata={"problem": "market.regime_labels is empty"})
    balance = labels.class_balance(stored["regime"], int(stored["regime"].max()) + 1)
    severity = dg.AssetCheckSeverity.ERROR if balance["missing"] else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        passed=not balance["missing"] and not balance["rare"], severity=severity,
        metadata={"counts": dg.MetadataValue.json({str(k): v for k, v in balance["counts"].items()}),
                  "missing": str(balance["missing"]), "under_5_percent": str(balance["rare"])})


@dg.asset_check(asset=regime_labels, pool="duckdb", blocking=True,
                description="ERROR when a session between the first and last label date that has complete "
                            "features carries no label.")
def labels_cover_sessions(warehouse: Warehouse, settings: RegimeSettings) -> dg.AssetCheckResult:
    gaps = warehouse.read(
        "WITH span AS (SELECT min(date) lo, max(date) hi FROM market.regime_labels) "
        "SELECT f.date FROM market.features f, span WHERE f.ticker = ? AND f.date BETWEEN span.lo AND span.hi "
        "AND NOT EXISTS (SELECT 1 FROM market.regime_labels l WHERE l.date = f.date) ORDER BY f.date",
        [settings.ticker])
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
