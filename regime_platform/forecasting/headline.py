"""Today's regime in one line, per ticker: what a person who runs the platform every day came for.

From the ledger's newest session of a ticker: the regime known now and since when, the headline model's forecast for
t + h with its probability and the runner-up, the position the backtest rule would take (flat when the forecast is
the risk-off regime, long otherwise) and the price source — the bundled offline sample said plainly. The other
models follow as a table, baselines last. The headline model is a setting (REGIME_HEADLINE_MODEL) whose default,
the ensemble, was fixed before any result was seen: the mean of its members, never the best model picked after the
fact. Plain Python (no Dagster).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from regime_platform.ingestion.sources import SAMPLE_SERIES, is_sample
from regime_platform.labels.names import names_by_id, regime_name
from regime_platform.modeling.walk_forward_targets import regime_mean_returns, risk_off_regime
from regime_platform.models import BASELINES

LONG, FLAT = "long", "flat"


class HeadlineError(ValueError):
    """The one-line answer cannot be given (no forecast of the headline model); the message says what to do."""


@dataclass(frozen=True)
class Headline:
    ticker: str
    as_of: dt.date
    known_regime: str | None
    known_since: dt.date | None
    model: str
    horizon: int
    target_date: dt.date
    regime: str
    probability: float
    runner_up: str | None
    runner_up_probability: float | None
    position: str
    risk_off: str | None
    source: str

    def line(self) -> str:
        known = (f"known regime {self.known_regime} since {self.known_since}" if self.known_since
                 else f"known regime {self.known_regime}" if self.known_regime else "known regime not recorded")
        runner = (f", runner-up {self.runner_up} {self.runner_up_probability:.2f}" if self.runner_up is not None
                  else "")
        why = (f" ({self.risk_off} is the risk-off regime)" if self.position == FLAT
               else f" (the risk-off regime is {self.risk_off})" if self.risk_off else " (no risk-off regime known)")
        return (f"{self.ticker} {self.as_of}: {known}; {self.model} forecasts {self.regime} for {self.target_date} "
                f"(t+{self.horizon}) p={self.probability:.2f}{runner}; position {self.position.upper()}{why}; "
                f"prices: {self.source}.")

    def as_dict(self) -> dict[str, Any]:
        out = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in self.__dict__.items()}
        return out | {"line": self.line()}


def source_text(source: str | None, ticker: str) -> str:
    """The price source in words: "OFFLINE sample: ^GSPC standing in for SPY" for the bundled sample."""
    if not source:
        return "unknown"
    if is_sample(source):
        symbol = source.split(":", 1)[1]
        title = next((s.title for s in SAMPLE_SERIES.values() if s.symbol == symbol), symbol)
        return f"OFFLINE sample: {symbol} standing in for {ticker} ({title}, bundled, ends 2018)"
    return source


def risk_off_of(labels: pl.DataFrame, prices: pl.DataFrame) -> int | None:
    """The regime with the lowest mean daily return over the labelled history — the backtest's rule, applied to the
    span the production models learn from. ``labels``: date, regime; ``prices``: date, adj_close."""
    if labels.is_empty() or prices.is_empty():
        return None
    frame = prices.sort("date").with_columns(pl.col("adj_close").pct_change().alias("ret")).join(
        labels.select("date", "regime"), on="date", how="inner").sort("date")
    if frame.is_empty():
        return None
    y = frame["regime"].to_numpy()
    means = regime_mean_returns(frame["ret"].fill_null(np.nan).to_numpy(), y, 0, len(y) - 1, int(y.max()) + 1)
    return risk_off_regime(means)


def known_since(known: pl.DataFrame, as_of: dt.date, regime: int | None) -> dt.date | None:
    """The first session of the run of ``regime`` that ends at ``as_of`` in ``known`` (date, known_regime: each
    session's regime as known then); None when ``known`` does not hold ``regime`` at ``as_of``."""
    if regime is None:
        return None
    rows = known.filter(pl.col("date") <= as_of).sort("date")
    if rows.is_empty() or rows["date"][-1] != as_of or rows["known_regime"][-1] != regime:
        return None
    values = rows["known_regime"].to_list()
    i = len(values) - 1
    while i > 0 and values[i - 1] == regime:
        i -= 1
    return rows["date"][i]


def newest_session(ledger: pl.DataFrame, horizon: int | None = None) -> pl.DataFrame:
    """One ticker's ledger rows of its newest session (of ``horizon`` when it has rows of it)."""
    if horizon is not None and (ledger["horizon"] == horizon).any():
        ledger = ledger.filter(pl.col("horizon") == horizon)
    return ledger.filter(pl.col("as_of") == ledger["as_of"].max()) if ledger.height else ledger


def headline(ticker: str, ledger: pl.DataFrame, model: str, names: Mapping[int, str], known: pl.DataFrame,
             risk_off: int | None, horizon: int | None = None) -> Headline:
    """Today's answer for ``ticker`` from its ledger rows (the newest session is used) and the known regimes."""
    rows = newest_session(ledger, horizon)
    if rows.is_empty():
        raise HeadlineError(f"the ledger holds no forecast of {ticker}: materialize regime_forecasts for the last "
                            "closed session (`make run` does).")
    mine = rows.filter(pl.col("model") == model)
    if mine.is_empty():
        raise HeadlineError(f"REGIME_HEADLINE_MODEL={model} has no forecast of {ticker} for {rows['as_of'][0]}: set it "
                            f"to one of {', '.join(sorted(rows['model'].unique().to_list()))}.")
    row = mine.row(0, named=True)
    probs = np.asarray(row["probabilities"], dtype=np.float64)
    decided = int(row["predicted_regime"])
    others = [int(i) for i in np.argsort(-probs, kind="stable") if int(i) != decided]
    known_now = row.get("known_regime")
    return Headline(
        ticker=ticker, as_of=row["as_of"], known_regime=regime_name(known_now, names) if known_now is not None else None,
        known_since=known_since(known, row["as_of"], known_now), model=model, horizon=int(row["horizon"]),
        target_date=row["target_date"], regime=regime_name(decided, names), probability=float(probs[decided]),
        runner_up=regime_name(others[0], names) if others else None,
        runner_up_probability=float(probs[others[0]]) if others else None,
        position=FLAT if risk_off is not None and decided == risk_off else LONG,
        risk_off=regime_name(risk_off, names) if risk_off is not None else None,
        source=source_text(row["price_source"], ticker))


def model_table(ledger: pl.DataFrame, names: Mapping[int, str], headline_model: str,
                horizon: int | None = None) -> pl.DataFrame:
    """Every model's forecast of the newest session: the headline model first, the other models by name, the
    baselines last; probabilities rounded to two decimals."""
    rows = newest_session(ledger, horizon)
    out = []
    for r in sorted(rows.iter_rows(named=True), key=lambda r: model_order(r["model"], headline_model)):
        probs = [round(float(p), 2) for p in r["probabilities"]]
        out.append({"model": r["model"] + (" (baseline)" if r["model"] in BASELINES else ""),
                    "as_of": r["as_of"], "target_date": r["target_date"],
                    "regime": regime_name(int(r["predicted_regime"]), names),
                    "probability": f"{probs[int(r['predicted_regime'])]:.2f}",
                    "probabilities": ", ".join(f"{regime_name(i, names)} {p:.2f}" for i, p in enumerate(probs)),
                    "model_version": r["model_version"], "status": r["status"]})
    return pl.DataFrame(out, schema={"model": pl.Utf8, "as_of": pl.Date, "target_date": pl.Date, "regime": pl.Utf8,
                                     "probability": pl.Utf8, "probabilities": pl.Utf8, "model_version": pl.Utf8,
                                     "status": pl.Utf8})


def changes(ledger: pl.DataFrame, model: str, sessions: list[dt.date],
            names: Mapping[int, str]) -> list[dict[str, Any]]:
    """Each of ``sessions`` whose headline-model forecast differs from the previous stored session's (one ticker's
    rows): what the `regime_changed` check warns on and the alert sensor posts."""
    rows = ledger.filter(pl.col("model") == model).sort("as_of")
    dates, decided = rows["as_of"].to_list(), rows["predicted_regime"].to_list()
    out = []
    for i in range(1, len(dates)):
        if dates[i] in sessions and decided[i] != decided[i - 1]:
            r = rows.row(i, named=True)
            out.append({"ticker": r["ticker"], "session": dates[i].isoformat(), "previous_session": dates[i - 1].isoformat(),
                        "old_regime": regime_name(int(decided[i - 1]), names),
                        "new_regime": regime_name(int(decided[i]), names),
                        "probability": round(float(r["probabilities"][int(decided[i])]), 4), "model": model,
                        "model_version": r["model_version"], "target_date": r["target_date"].isoformat()})
    return out


def today(ticker: str, inputs: Mapping[str, pl.DataFrame], model: str, horizon: int | None = None) -> Headline:
    """:func:`headline` from what ``storage.headline_inputs`` reads (ledger, labels, prices)."""
    labels = inputs["labels"]
    return headline(ticker, inputs["ledger"], model, names_by_id(labels), labels.select("date", "known_regime"),
                    risk_off_of(labels, inputs["prices"]), horizon)


PLOT_YEARS = 2


def plot_frame(oos: pl.DataFrame, ledger: pl.DataFrame, model: str, risk_off: int | None,
               since: dt.date) -> pl.DataFrame:
    """The headline model's forecasts to draw from ``since``: its walk-forward out-of-sample rows, then the ledger's
    rows (which win on a session both hold). Columns as_of, predicted_regime, p_risk_off, origin."""
    off = risk_off or 0

    def shaped(frame: pl.DataFrame, origin: str) -> pl.DataFrame:
        return frame.filter(pl.col("as_of") >= since).select(
            "as_of", pl.col("predicted_regime").cast(pl.Int32),
            pl.col("probabilities").list.get(off, null_on_oob=True).cast(pl.Float64).alias("p_risk_off"),
            pl.lit(origin).alias("origin"))

    live = shaped(ledger.filter(pl.col("model") == model), "ledger")
    past = shaped(oos, "walk-forward").join(live.select("as_of"), on="as_of", how="anti")
    return pl.concat([past, live]).sort("as_of")


def model_order(model: str, headline_model: str) -> tuple[int, str]:
    """The headline model first, the other models by name, the baselines last."""
    return (0 if model == headline_model else 2 if model in BASELINES else 1, model)


def history_table(ledger: pl.DataFrame, names: Mapping[str, Mapping[int, str]], sessions: int,
                  headline_model: str) -> pl.DataFrame:
    """The ledger's rows of each ticker's last ``sessions`` sessions, one row per (session, model, horizon): regime
    names, the forecast's probability to two decimals and the full probability vector; per ticker the headline model
    first, baselines last, each model's sessions oldest first (`regime-platform forecast --history N`)."""
    out = []
    for ticker in sorted(set(ledger["ticker"].to_list())):
        mine = ledger.filter(pl.col("ticker") == ticker)
        keep = sorted(set(mine["as_of"].to_list()))[-max(1, sessions):]
        lookup = names.get(ticker, {})
        rows = mine.filter(pl.col("as_of").is_in(keep)).iter_rows(named=True)
        for r in sorted(rows, key=lambda r: (model_order(r["model"], headline_model), r["horizon"], r["as_of"])):
            decided = int(r["predicted_regime"])
            known, realized = r.get("known_regime"), r.get("realized_regime")
            out.append({
                "ticker": ticker, "model": r["model"], "baseline": r["model"] in BASELINES, "as_of": r["as_of"],
                "horizon": r["horizon"], "target_date": r["target_date"], "regime": regime_name(decided, lookup),
                "probability": round(float(r["probabilities"][decided]), 2),
                "probabilities": [round(float(p), 4) for p in r["probabilities"]],
                "known_regime": regime_name(int(known), lookup) if known is not None else None,
                "model_version": r["model_version"], "price_source": r["price_source"], "status": r["status"],
                "realized_regime": regime_name(int(realized), lookup) if realized is not None else None,
            })
    return pl.DataFrame(out, schema={
        "ticker": pl.Utf8, "model": pl.Utf8, "baseline": pl.Boolean, "as_of": pl.Date, "horizon": pl.Int32,
        "target_date": pl.Date, "regime": pl.Utf8, "probability": pl.Float64, "probabilities": pl.List(pl.Float64),
        "known_regime": pl.Utf8, "model_version": pl.Utf8, "price_source": pl.Utf8, "status": pl.Utf8,
        "realized_regime": pl.Utf8})
