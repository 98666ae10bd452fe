"""The forecast ledger: the forecasts actually made each trading day, scored later against what happened.

Plain Python (no Dagster). A ledger row is one model's probabilities, made after the close of session
`as_of`, for the regime of session `target_date` = as_of + h sessions. It is `pending` until the label at
`target_date` has settled (DESIGN §3a: the walk-forward's truth), then `scored` with the realized regime and the
version of the labels that scored it — once, never rescored.
The scoreboard compares the live record with the same model's pooled walk-forward (out-of-sample) figures.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np
import polars as pl

from regime_platform import calendar
from regime_platform import storage as warehouse

# the one Brier score (halved, multi-class) lives with every other metric's definition; evaluation imports nothing
# from forecasting, so this sibling edge cannot close a cycle
from regime_platform.evaluation.metrics import brier
from regime_platform.labels.assign import KnownRegime  # noqa: F401  (forecast_rows takes it)
from regime_platform.labels.names import regime_name
from regime_platform.labels.version import labels_version  # noqa: F401  (the ledger's name for it)
from regime_platform.modeling.decision import next_decision, votes

PENDING, SCORED = "pending", "scored"

LEDGER_SCHEMA = warehouse.schema("regime_forecasts")


class Forecaster(Protocol):
    """What the ledger needs of a production model (production.ProductionModel satisfies it)."""

    name: str
    model_version: str
    feature_names: list[str]
    window: int
    horizon: int
    train_target_end: dt.date
    labeler_fit_end: dt.date | None
    min_dwell: int
    risk_off_regime: int | None  # with a risk-off threshold (REGIME_RISK_OFF_THRESHOLD): the regime it guards
    risk_off_threshold: float | None
    persistence_anchor: float | None  # REGIME_PERSISTENCE_ANCHOR: stay at the known regime unless the vote is this sure

    def forecast_last(self, X: np.ndarray, known_regime_at_t: int | None = None) -> np.ndarray: ...


class LedgerError(ValueError):
    """A forecast that must not be written (not yet closed, missing inputs, or in-sample)."""


def target_session(as_of: dt.date, horizon: int) -> dt.date:
    """The session `horizon` sessions after `as_of`."""
    ahead = calendar.sessions(as_of + dt.timedelta(days=1), as_of + dt.timedelta(days=2 * horizon + 14))
    return ahead[horizon - 1]


def data_end(model: Forecaster) -> dt.date:
    """The newest date whose data shaped the model: its last training target, or its labeler's fit end."""
    ends = [model.train_target_end] + ([model.labeler_fit_end] if model.labeler_fit_end else [])
    return max(ends)


def in_sample_refusal(model: Forecaster, as_of: dt.date) -> str | None:
    """One sentence when a forecast for `as_of` by this model would be in-sample (fit on data after the date)."""
    end = data_end(model)
    if end > as_of:
        return (f"{model.name} ({model.model_version}) was fit on data up to {end}, after {as_of}: a ledger row "
                f"for {as_of} would be in-sample, so it is refused — the ledger only records forecasts made going "
                "forward (materialize the last closed session).")
    return None


def not_closed_refusal(as_of: dt.date, now: dt.datetime | None = None) -> str | None:
    last = calendar.last_closed_session(now)
    if as_of > last:
        return (f"session {as_of} has not closed yet (the last closed session is {last}): its forecast is made "
                "after the close, so materialize it then (the daily schedule does).")
    return None


def forecast_rows(ticker: str, models: Sequence[Forecaster], as_of: dt.date, features: pl.DataFrame,
                  known: KnownRegime | int | None, price_source: str,
                  history: Mapping[str, pl.DataFrame] | None = None) -> pl.DataFrame:
    """One pending ledger row of ``ticker`` per model for session `as_of`.

    `features` holds the stored feature rows up to and including `as_of` (date-ordered, at least the
    longest window); `known` is the regime known after the close of `as_of` (what was knowable then) and the labels
    version it came from — both stored in the row. `history[model]`: that model's previous ledger rows (as_of-ordered,
    with model_version; at least its ``min_dwell - 1`` last), from which a model with a minimum dwell continues its
    decision rule (:func:`decide`); the row's `decision_note` says whether it continued or restarted, and why.
    """
    if features.is_empty() or features["date"].max() != as_of:
        raise LedgerError(f"market.features has no {ticker} row for {as_of}: materialize ohlcv and features for it "
                          "first.")
    if isinstance(known, int):
        known = KnownRegime(known, "unrecorded")
    rows: list[dict[str, Any]] = []
    for model in models:
        refusal = in_sample_refusal(model, as_of)
        if refusal:
            raise LedgerError(refusal)
        frame = features.tail(model.window)
        if frame.height < model.window:
            raise LedgerError(f"only {frame.height} feature rows up to {as_of}, {model.name} needs a window of "
                              f"{model.window}: materialize features for the earlier sessions first.")
        X = frame.select(model.feature_names).fill_null(np.nan).to_numpy().astype(np.float64)
        if not np.isfinite(X).all():
            missing = [n for n, ok in zip(model.feature_names, np.isfinite(X).all(axis=0)) if not ok]
            raise LedgerError(f"the {model.window}-session window ending {as_of} has missing values of "
                              f"{', '.join(missing)} (warm-up or a gap; a macro_ feature: no market.macro value usable "
                              "then — materialize macro for the session): forecast a later session or fill the gap.")
        probabilities = np.asarray(model.forecast_last(X, known.regime if known else None), dtype=np.float64)
        decision, note = decide(model, as_of, probabilities, (history or {}).get(model.name),
                                known.regime if known else None)
        rows.append({
            "ticker": ticker, "as_of": as_of, "target_date": target_session(as_of, model.horizon), "horizon": model.horizon,
            "model": model.name, "predicted_regime": decision,
            "probabilities": [float(p) for p in probabilities], "model_version": model.model_version,
            "price_source": price_source, "status": PENDING, "realized_regime": None, "labels_version": None,
            "known_regime": known.regime if known else None,
            "known_labels_version": known.labels_version if known else None, "decision_note": note,
        })
    return pl.DataFrame(rows, schema=LEDGER_SCHEMA)


def continuation(history: pl.DataFrame | None, as_of: dt.date, model_version: str) -> tuple[pl.DataFrame, str | None]:
    """The stored rows the dwell rule may continue from: the newest run of rows on consecutive sessions ending at the
    session just before `as_of`, all made by `model_version`. Returns (rows, None) or (no rows, why it restarts)."""
    previous = calendar.previous_session(as_of)
    if history is None or history.is_empty():
        return pl.DataFrame(), f"no stored row for the previous session {previous}"
    ordered = history.sort("as_of")
    dates, versions = ordered["as_of"].to_list(), ordered["model_version"].to_list()
    if dates[-1] != previous:
        return pl.DataFrame(), f"the newest stored row is of {dates[-1]}, not of the previous session {previous}"
    if versions[-1] != model_version:
        return pl.DataFrame(), f"the previous session's row was made by another model version, {versions[-1]}"
    keep, expected = 0, previous
    for d, v in zip(reversed(dates), reversed(versions)):
        if d != expected or v != model_version:
            break
        keep, expected = keep + 1, calendar.previous_session(d)
    return ordered.tail(keep), None


def decide(model: Forecaster, as_of: dt.date, probabilities: np.ndarray,
           history: pl.DataFrame | None, known_today: int | None = None) -> tuple[int, str | None]:
    """Today's decision and how it was made: the argmax (note None) — or, with a risk-off threshold, the risk-off regime
    when its probability reaches it, and with a persistence anchor the regime known today (``known_today``) unless the
    vote is another regime at least that probable (:func:`regime_platform.modeling.decision.votes`) — or with
    ``model.min_dwell`` > 1 the decision rule continued from the model's stored rows of the consecutive sessions just
    before (their stored decision and the votes of their probabilities and stored known regimes) — only over rows of
    the same model version; otherwise the rule restarts at today's vote, and the note says why."""
    off, theta = getattr(model, "risk_off_regime", None), getattr(model, "risk_off_threshold", None)
    anchor = getattr(model, "persistence_anchor", None)

    def vote(p, known: int | None) -> int:
        return int(votes(np.asarray([p], dtype=np.float64), off, theta, anchor=anchor,
                         known=np.asarray([-1 if known is None else int(known)]))[0])

    today = vote(probabilities, known_today)
    rule = f"risk-off at p ≥ {theta}, " if theta is not None and off is not None else ""
    if anchor is not None:
        rule += f"anchored to the known regime below p {anchor:g}, "
    dwell = int(getattr(model, "min_dwell", 1) or 1)
    if dwell <= 1:
        return today, (f"{rule}dwell 1" if rule else None)
    rows, why = continuation(history, as_of, model.model_version)
    if why:
        return today, f"{rule}dwell {dwell}: restarted at today's {'vote' if rule else 'argmax'} ({why})"
    kept = rows.tail(dwell - 1)
    known = kept["known_regime"].to_list() if anchor is not None else [None] * kept.height  # stored with each row
    recent = [vote(p, k) for p, k in zip(kept["probabilities"].to_list(), known)] + [today]
    decision = next_decision(int(rows["predicted_regime"][-1]), recent, dwell)
    return decision, (f"{rule}dwell {dwell}: continued from {rows.height} stored row(s) {rows['as_of'][0]} … "
                      f"{rows['as_of'][-1]}")


def settled_truth(labels: pl.DataFrame, settle: int) -> pl.DataFrame:
    """The labels that may score a forecast — the one truth of the ledger and the walk-forward (DESIGN §3a): a user's
    file's label at every date; a generated labeler's only at dates with at least ``settle`` later sessions in its
    fit (the newest ``settle`` labels may still change as the fit end moves on, so their rows stay pending)."""
    ordered = labels.sort("date")
    if settle <= 0 or ordered.is_empty() or ordered["labeler"][0] == "user":
        return ordered
    return ordered.head(max(0, ordered.height - settle))


def score_pending(pending: pl.DataFrame, labels: pl.DataFrame, version: str, settle: int = 0) -> pl.DataFrame:
    """The pending rows whose target date's label has settled (:func:`settled_truth`), with their realized regime.

    ``pending`` and ``labels`` (date, regime, labeler) are one ticker's. Returns (ticker, as_of, model, horizon,
    realized_regime, labels_version); rows whose target has not settled are left out.
    """
    keys = pending.select("ticker", "as_of", "model", "horizon", "target_date")
    truth = settled_truth(labels, settle).select(pl.col("date").alias("target_date"),
                                                 pl.col("regime").cast(pl.Int32).alias("realized_regime"))
    return (keys.join(truth, on="target_date", how="inner")
            .select("ticker", "as_of", "model", "horizon", "realized_regime")
            .with_columns(pl.lit(version).alias("labels_version")))


# --- scoreboard math -------------------------------------------------------------------------------------------

def hit_rate(predicted: np.ndarray, realized: np.ndarray) -> float:
    return float(np.mean(predicted == realized)) if len(predicted) else float("nan")


def macro_f1(predicted: np.ndarray, realized: np.ndarray) -> float:
    """Mean F1 over the classes that occur in either the predictions or the outcomes."""
    if not len(predicted):
        return float("nan")
    scores = []
    for k in np.union1d(predicted, realized):
        tp = np.sum((predicted == k) & (realized == k))
        fp = np.sum((predicted == k) & (realized != k))
        fn = np.sum((predicted != k) & (realized == k))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


@dataclass
class Figures:
    n: int
    hit_rate: float
    macro_f1: float
    brier: float


def figures(predicted: Sequence[int], realized: Sequence[int], probabilities: Sequence[Sequence[float]]) -> Figures:
    p, r = np.asarray(predicted, dtype=np.int64), np.asarray(realized, dtype=np.int64)
    return Figures(len(p), hit_rate(p, r), macro_f1(p, r), brier(r, probabilities))


def scoreboard(ledger: pl.DataFrame, oos: pl.DataFrame) -> pl.DataFrame:
    """Per ticker, model and horizon: live hit rate, macro-F1, Brier and counts, next to the pooled walk-forward
    figures of the same ticker.

    `ledger` is market.regime_forecasts; `oos` is market.oos_predictions of each ticker's current targets version
    (ticker, model, horizon, predicted_regime, probabilities, true_regime).
    """
    rows = []
    for (ticker, model, horizon), group in sorted(ledger.group_by(["ticker", "model", "horizon"]),
                                                  key=lambda kv: kv[0]):
        scored = group.filter(pl.col("status") == SCORED)
        live = figures(scored["predicted_regime"].to_list(), scored["realized_regime"].to_list(),
                       scored["probabilities"].to_list())
        wf_rows = oos.filter((pl.col("ticker") == ticker) & (pl.col("model") == model)
                             & (pl.col("horizon") == horizon) & pl.col("true_regime").is_not_null()) if oos.height else oos
        wf = figures(wf_rows["predicted_regime"].to_list(), wf_rows["true_regime"].to_list(),
                     wf_rows["probabilities"].to_list()) if wf_rows.height else Figures(0, *(float("nan"),) * 3)
        rows.append({
            "ticker": ticker, "model": model, "horizon": horizon, "scored": live.n, "pending": group.height - live.n,
            "live_hit_rate": live.hit_rate, "live_macro_f1": live.macro_f1, "live_brier": live.brier,
            "wf_hit_rate": wf.hit_rate, "wf_macro_f1": wf.macro_f1, "wf_brier": wf.brier, "wf_predictions": wf.n,
            "first_as_of": group["as_of"].min(), "last_as_of": group["as_of"].max(),
        })
    schema = {"ticker": pl.Utf8, "model": pl.Utf8, "horizon": pl.Int32, "scored": pl.Int64, "pending": pl.Int64,
              "live_hit_rate": pl.Float64, "live_macro_f1": pl.Float64, "live_brier": pl.Float64,
              "wf_hit_rate": pl.Float64, "wf_macro_f1": pl.Float64, "wf_brier": pl.Float64,
              "wf_predictions": pl.Int64, "first_as_of": pl.Date, "last_as_of": pl.Date}
    return pl.DataFrame(rows, schema=schema)


def live_record(ledger: pl.DataFrame) -> pl.DataFrame:
    """Scored rows in date order with each ticker's and model's running (expanding) hit rate: what the plot draws."""
    scored = ledger.filter(pl.col("status") == SCORED).sort("ticker", "model", "as_of")
    return scored.with_columns(
        (pl.col("predicted_regime") == pl.col("realized_regime")).cast(pl.Float64).alias("hit")
    ).with_columns(pl.col("hit").cum_sum().over("ticker", "model").alias("hits"),
                   pl.int_range(1, pl.len() + 1).over("ticker", "model").alias("n")).with_columns(
        (pl.col("hits") / pl.col("n")).alias("running_hit_rate"))


def latest_forecasts(ledger: pl.DataFrame, names: Mapping[str, dict[int, str]] | None = None) -> pl.DataFrame:
    """The newest forecast of each ticker's models: as_of, target date, regime (name), its probability, model version
    (``names``: ticker → regime id → name)."""
    if ledger.is_empty():
        return pl.DataFrame(schema={"ticker": pl.Utf8, "model": pl.Utf8, "as_of": pl.Date, "target_date": pl.Date,
                                    "regime": pl.Int32, "regime_name": pl.Utf8, "probability": pl.Float64,
                                    "model_version": pl.Utf8, "status": pl.Utf8})
    newest = ledger.sort("as_of").group_by("ticker", "model", maintain_order=True).last().sort("ticker", "model")
    names = names or {}
    return newest.select(
        "ticker", "model", "as_of", "target_date", pl.col("predicted_regime").alias("regime"),
        pl.struct("ticker", "predicted_regime").map_elements(
            lambda s: regime_name(s["predicted_regime"], names.get(s["ticker"], {})), return_dtype=pl.Utf8)
        .alias("regime_name"),
        pl.struct("probabilities", "predicted_regime").map_elements(
            lambda s: float(s["probabilities"][s["predicted_regime"]]), return_dtype=pl.Float64).alias("probability"),
        "model_version", "status")


def jsonable(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts (dates as ISO strings, NaN as null): metadata and `regime-platform … --json`."""
    def clean(v: Any) -> Any:
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, float) and v != v:
            return None
        return v
    return [{k: clean(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]
