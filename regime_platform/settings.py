"""The platform's settings, declared once.

Each field of :class:`Settings` names its environment variable and what it means. The Dagster resource
``RegimeSettings`` (defs/resources.py) is generated from these fields, so every setting is also Dagster run
config under ``resources.settings.config`` — except ``start`` (``REGIME_START``), which fixes the session
partitions when the definitions load and so can only be set in the environment.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SOURCES = ("auto", "yfinance", "stooq", "csv", "sample")
LABELERS = ("jump", "kmeans", "hmm", "drawdown")
# S of DESIGN §3a per labeler: sessions after d before the label at d counts as settled. Measured on the sample by
# benchmarks/bench_label_settling.py (the share of dates whose label still changes after S; see docs/concepts.md).
SETTLE_SESSIONS = {"jump": 42, "kmeans": 0, "hmm": 10, "drawdown": 252}
HORIZONS = (1, 5, 21)
INNER_SCORES = ("macro_f1", "sharpe")
CALIBRATIONS = ("none", "temperature")
# The first XNYS session the trading calendar knows (calendar.CALENDAR_START): partitions cannot start earlier.
EARLIEST_START = dt.date(1990, 1, 2)
# numpy's and scikit-learn's seeds are unsigned 32-bit integers.
MAX_SEED = 2**32 - 1
MACRO_INPUTS = ("off", "auto")
DEFAULT_MACRO_SERIES = ("VIXCLS", "T10Y2Y", "BAMLH0A0HYM2", "BAA", "AAA", "DTB3")


class SettingsError(ValueError):
    """A setting has a value the platform cannot use; the message names the variable."""


def _text(raw: str, env: str) -> str:
    return raw


def _lower(raw: str, env: str) -> str:
    return raw.lower()


# A ticker names folders and files (artifacts/<asset>/<TICKER>/, regimes/regime_labels_<TICKER>.csv): no '/', and it
# cannot start with '.', so no ticker can be '..' or lead outside REGIME_DATA_DIR.
TICKER_SYMBOL = re.compile(r"[A-Z0-9^][A-Z0-9.\-=^]{0,14}")


def parse_tickers(raw: str, env: str) -> tuple[str, ...]:
    tickers: list[str] = []
    for part in raw.split(","):
        ticker = part.strip().upper()
        if not ticker:
            continue
        if not TICKER_SYMBOL.fullmatch(ticker):
            raise SettingsError(f"{env}={raw!r}: {part.strip()!r} is not a ticker symbol; use letters, digits, '.', "
                                "'-', '^' or '=' (e.g. SPY,QQQ,BRK-B).")
        if ticker not in tickers:
            tickers.append(ticker)
    if not tickers:
        raise SettingsError(f"{env}={raw!r} names no ticker; give a comma list such as SPY,QQQ.")
    return tuple(tickers)


def check_ticker_partition(key: str) -> str:
    """A ticker partition's key (the UI's partition dialog takes any text) as the ticker it must be: its files are
    written in a folder named after it, so a key that is not a ticker symbol is refused before any work."""
    if not TICKER_SYMBOL.fullmatch(key):
        raise SettingsError(f"the ticker partition {key!r} is not a ticker symbol, and its files would be written under "
                            "that name (outside REGIME_DATA_DIR with '/' or '..'): delete the partition and add tickers "
                            "through REGIME_TICKERS (e.g. SPY,BRK-B).")
    return key


def inside(root: Path, *parts: str) -> Path:
    """``root`` joined with ``parts``, refused unless the result stays inside ``root`` (judged on the path's text, so
    a symlink the user placed inside the data dir, to a labels file kept elsewhere, say, still works)."""
    path = root.joinpath(*parts)
    base, joined = os.path.normpath(os.path.abspath(root)), os.path.normpath(os.path.abspath(path))
    if os.path.commonpath([base, joined]) != base:
        raise SettingsError(f"{path} lies outside {root}, and the platform writes only inside REGIME_DATA_DIR: use "
                            "ticker symbols in REGIME_TICKERS and names without '/' or '..'.")
    return path


def parse_series(raw: str, env: str) -> tuple[str, ...]:
    """A comma list of FRED series ids (upper case letters, digits and '_', e.g. VIXCLS,BAA)."""
    names = tuple(dict.fromkeys(p.strip().upper() for p in raw.split(",") if p.strip()))
    bad = [n for n in names if not re.fullmatch(r"[A-Z0-9_]{1,30}", n)]
    if bad or not names:
        raise SettingsError(f"{env}={raw!r}: {bad[0] if bad else 'no series'!r} is not a FRED series id; give a comma "
                            "list such as VIXCLS,BAA,AAA.")
    return names


def _path(raw: str, env: str) -> Path:
    return Path(raw)


def _int(raw: str, env: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{env}={raw!r} is not an integer; set it to a whole number.") from None


def _int_or_all(raw: str, env: str) -> int | None:
    return _int(raw, env) or None  # 0 = every fold


def _int_or_none(raw: str, env: str) -> int | None:
    return _int(raw, env) if raw.strip() else None


def _bool(raw: str, env: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{env}={raw!r} is not a yes/no value; set it to 1 or 0.")


def _date(raw: str, env: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"{env}={raw!r} is not a date; use YYYY-MM-DD, e.g. 2000-01-03.") from None


def check_start(start: dt.date, today: dt.date | None = None) -> dt.date:
    """REGIME_START within what the calendar and the sources can serve: from EARLIEST_START to today."""
    today = today or dt.date.today()
    if start < EARLIEST_START:
        raise SettingsError(f"REGIME_START={start} is before {EARLIEST_START}, the first session the trading calendar "
                            f"knows; choose a date from {EARLIEST_START} to today.")
    if start > today:
        raise SettingsError(f"REGIME_START={start} is in the future, so no session from it has closed; choose a date "
                            f"from {EARLIEST_START} to today ({today}).")
    return start


def _off_tail_or_number(raw: str, allowed: Callable[[float], bool], sentence: str) -> float | str | None:
    """A mode setting read as the training code takes it: None for `off`, "tail", or a number ``allowed`` accepts;
    anything else raises ``sentence`` (formatted with the value)."""
    value = raw.strip()
    if value in ("off", "tail"):
        return None if value == "off" else "tail"
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not allowed(number):
        raise SettingsError(sentence.format(value))
    return number


def setting(default: Any, env: str, doc: str, parse: Callable[[str, str], Any], *, load_time_only: bool = False,
            secret: bool = False, alias: str | None = None) -> Any:
    """A settings field: its default, environment variable (and an older one-value spelling), meaning and parser."""
    return field(default=default, repr=not secret,
                 metadata={"env": env, "doc": doc, "parse": parse, "load_time_only": load_time_only, "alias": alias,
                           "secret": secret})


@dataclass(frozen=True)
class Settings:
    data_dir: Path = setting(Path("data"), "REGIME_DATA_DIR",
                             "`warehouse.duckdb`, `artifacts/`, `regimes/regime_labels.csv`", _path)
    source: str = setting("auto", "REGIME_SOURCE", "`auto` | `yfinance` | `stooq` | `csv` | `sample`", _lower)
    tickers: tuple[str, ...] = setting(("SPY",), "REGIME_TICKERS",
                                       "comma list of the tickers to ingest and forecast, e.g. `SPY,QQQ` "
                                       "(`REGIME_TICKER` is the one-ticker spelling)", parse_tickers, alias="REGIME_TICKER")
    start: dt.date = setting(dt.date(2000, 1, 3), "REGIME_START",
                             "first partition (read when the definitions load: environment only)", _date,
                             load_time_only=True)
    horizon: int = setting(5, "REGIME_HORIZON", "sessions ahead to forecast (1, 5 or 21)", _int)
    window: int = setting(30, "REGIME_WINDOW", "sessions per input window", _int)
    labeler: str = setting("jump", "REGIME_LABELER",
                           "`jump` | `kmeans` | `hmm` | `drawdown` (ignored when your labels file exists)", _lower)
    label_lag: int = setting(0, "REGIME_LABEL_LAG", "sessions after which a user's label counts as known", _int)
    settle_sessions: int | None = setting(None, "REGIME_SETTLE_SESSIONS",
                                          "sessions a generated label must have after it before it scores a forecast "
                                          "(the walk-forward's and the ledger's one truth, DESIGN §3a); unset = the "
                                          "labeler's measured default (" + ", ".join(f"{k} {v}" for k, v in SETTLE_SESSIONS.items())
                                          + ")",
                                          _int_or_none)
    epochs: int = setting(30, "REGIME_EPOCHS",
                          "most epochs of the LSTM and CNN (early stopping on the training tail picks fewer)", _int)
    max_folds: int | None = setting(None, "REGIME_MAX_FOLDS",
                                    "keep only the last N walk-forward folds (quick looks; tests use 2); 0 = all",
                                    _int_or_all)
    class_weighting: bool = setting(True, "REGIME_CLASS_WEIGHTING",
                                    "weight classes by inverse frequency when fitting (1 or 0)", _bool)
    oversampling: str = setting("none", "REGIME_OVERSAMPLING",
                                "`none` | `random` | `smote` (imbalanced-learn) on the training samples", _lower)
    seed: int = setting(0, "REGIME_SEED", "random seed of every model fit", _int)
    min_dwell: int = setting(0, "REGIME_MIN_DWELL",
                             "sessions a new regime must be the argmax before a model's forecast flips to it "
                             "(causal hysteresis on `predicted_regime`; 0 = chosen per fold from 1, 3, 5, 10 on the "
                             "training span's inner validation; 1 = plain argmax; k = always k)", _int)
    inner_validation: bool = setting(True, "REGIME_INNER_VALIDATION",
                                     "choose logistic C, forest depth/leaf size, gradient boosting depth/rounds/leaf "
                                     "size and LSTM/CNN width, dropout and weight decay per fold on the training span's "
                                     "embargoed tail, then refit on the whole span (1 or 0)", _bool)
    features: str = setting("compact", "REGIME_FEATURES",
                            "model inputs: `compact` (10 scale-free features, one per concept) | `scale_free` (all 22) "
                            "| a comma-separated list of scale-free feature columns", _text)
    feature_selection: bool = setting(False, "REGIME_FEATURE_SELECTION",
                                      "choose up to 8 of REGIME_FEATURES per fold on its training span (mutual "
                                      "information, near-duplicates dropped), 1 or 0", _bool)
    calibration: str = setting("temperature", "REGIME_CALIBRATION",
                               "`temperature` (scale each model's probabilities on the training span's tail; never "
                               "changes a single model's argmax) | `none`", _lower)
    inner_score: str = setting("macro_f1", "REGIME_INNER_SCORE",
                               "what the inner validation maximizes on the tail: `macro_f1` | `sharpe` (the backtest "
                               "convention on the tail, flat in the span's risk-off regime)", _lower)
    risk_off_threshold: str = setting("off", "REGIME_RISK_OFF_THRESHOLD",
                                      "the economic decision threshold: `off` (act on the argmax) | `tail` (per fold, "
                                      "the threshold of 0.2, 0.3, 0.4, 0.5 or none whose decisions earn the best Sharpe "
                                      "on the training span's tail: risk-off as soon as the risk-off regime's "
                                      "probability reaches it) | a probability in (0, 1), always", _lower)
    persistence_anchor: str = setting("off", "REGIME_PERSISTENCE_ANCHOR",
                                      "stay at the regime known at t unless the model's vote is this probable: `off` | "
                                      "`tail` (per fold, none, 0.6, 0.7, 0.8, 0.9 or 0.95 by REGIME_INNER_SCORE on the "
                                      "training span's tail) | a probability in [0.5, 1], always", _lower)
    recency_half_life: str = setting("off", "REGIME_RECENCY_HALF_LIFE",
                                     "recency weighting of the training samples: `off` (every sample weighs the same) | "
                                     "`tail` (per fold, the half-life of none, 252, 756 or 1260 sessions that scores "
                                     "best on the training span's tail, with capacity and dwell) | a half-life in "
                                     "sessions, always; a sample H sessions before a fit's last one weighs half as "
                                     "much. Not with REGIME_OVERSAMPLING=smote", _lower)
    headline_model: str = setting("ensemble", "REGIME_HEADLINE_MODEL",
                                  "the model whose forecast is today's one-line answer (`forecast`, the end of `run`, "
                                  "the ledger's page, alerts); default the ensemble, fixed in advance: the mean of the "
                                  "members, never the best model picked after the fact", _lower)
    alert_webhook: str | None = setting(None, "REGIME_ALERT_WEBHOOK",
                                        "URL the alert sensor posts a JSON message to when the headline forecast's "
                                        "regime changes (unset = no alerts; read at tick time, never shown in the UI)",
                                        _text, secret=True)
    ui_url: str = setting("http://127.0.0.1:3000", "REGIME_UI_URL",
                          "the Dagster UI's address, which the alerts link to (where `make ui` serves by default)", _text)
    macro_series: tuple[str, ...] = setting(DEFAULT_MACRO_SERIES, "REGIME_MACRO_SERIES",
                                            "FRED series the `macro` asset stores in market.macro (through "
                                            "pandas-datareader; offline the bundled AAA, BAA and VIX)", parse_series)
    macro_lag: int = setting(1, "REGIME_MACRO_LAG",
                             "sessions after its date a daily macro value becomes usable (monthly values: the first "
                             "session after the month plus the series' stated publication lag)", _int)
    macro: str = setting("off", "REGIME_MACRO",
                         "`off` | `auto`: add the macro features that cover the labelled span (VIX z-score, term "
                         "and credit spreads, point in time) to the model inputs", _lower)
    stooq_api_key: str | None = setting(None, "STOOQ_API_KEY", "Stooq's API key", _text, secret=True)
    ohlcv_csv: Path | None = setting(None, "REGIME_OHLCV_CSV", "your OHLCV file for `REGIME_SOURCE=csv`", _path)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Every setting from its environment variable (unset or blank = the default), validated."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            env, alias = f.metadata["env"], f.metadata["alias"]
            raw = (environ.get(env) or "").strip()
            if alias and (environ.get(alias) or "").strip():
                older = environ[alias].strip()
                if raw and f.metadata["parse"](raw, env) != f.metadata["parse"](older, alias):
                    raise SettingsError(f"{env}={raw!r} and {alias}={older!r} disagree; set only {env}.")
                raw, env = raw or older, env if raw else alias
            if raw:
                values[f.name] = f.metadata["parse"](raw, env)
        settings = cls(**values)
        settings.validate()
        return settings

    @classmethod
    def start_from_env(cls, environ: Mapping[str, str] | None = None) -> dt.date:
        """Only ``REGIME_START``: what the partitions need when the definitions load."""
        environ = os.environ if environ is None else environ
        raw = (environ.get("REGIME_START") or "").strip()
        return check_start(_date(raw, "REGIME_START")) if raw else cls.start

    def validate(self) -> None:
        check_start(self.start)
        for ticker in self.tickers:  # a Settings built directly (not from REGIME_TICKERS) names only ticker symbols too
            if not isinstance(ticker, str) or not TICKER_SYMBOL.fullmatch(ticker):
                raise SettingsError(f"REGIME_TICKERS: {ticker!r} is not a ticker symbol; use letters, digits, '.', '-', "
                                    "'^' or '=' (e.g. SPY,QQQ,BRK-B).")
        if not 0 <= self.seed <= MAX_SEED:
            raise SettingsError(f"REGIME_SEED={self.seed} is out of range; use a whole number from 0 to {MAX_SEED}.")
        if self.source not in SOURCES:
            raise SettingsError(f"REGIME_SOURCE={self.source!r} is unknown; use one of {', '.join(SOURCES)}.")
        if self.labeler not in LABELERS:
            raise SettingsError(f"REGIME_LABELER={self.labeler!r} is unknown; use one of {', '.join(LABELERS)}.")
        if self.horizon not in HORIZONS:
            raise SettingsError(f"REGIME_HORIZON={self.horizon} is not supported; use one of {HORIZONS}.")
        if not 5 <= self.window <= 250:
            raise SettingsError(f"REGIME_WINDOW={self.window} is out of range; use 5…250 sessions (default 30).")
        if self.epochs < 1:
            raise SettingsError(f"REGIME_EPOCHS={self.epochs} must be at least 1.")
        if self.max_folds is not None and self.max_folds < 1:
            raise SettingsError(f"REGIME_MAX_FOLDS={self.max_folds} must be at least 1 (unset or 0 = every fold).")
        # the oversampling methods, which of them carries the weights and the sentence refusing SMOTE are the model
        # layer's; imported here, not at the top, so that importing the settings does not load the model package
        # (0.02 s against 0.7 s)
        from regime_platform.models.base import OVERSAMPLING, weights_refusal

        if self.oversampling not in OVERSAMPLING:
            raise SettingsError(f"REGIME_OVERSAMPLING={self.oversampling!r} is unknown; use one of "
                                f"{', '.join(OVERSAMPLING)}.")
        if self.min_dwell < 0:
            raise SettingsError(f"REGIME_MIN_DWELL={self.min_dwell} is negative; use 1 or more sessions (1 = act on "
                                "the argmax every day), or 0 to choose it per fold.")
        self.recency_half_life_value()  # raises the one sentence for a value that is neither a mode nor a half-life
        if self.recency_half_life_value() is not None and (why := weights_refusal(self.oversampling,
                                                                                  self.recency_half_life)):
            raise SettingsError(why)
        self.risk_off_threshold_value(), self.persistence_anchor_value()  # each raises its one sentence for a bad value
        if self.inner_score not in INNER_SCORES:
            raise SettingsError(f"REGIME_INNER_SCORE={self.inner_score!r} is unknown; use one of "
                                f"{', '.join(INNER_SCORES)}.")
        if self.calibration not in CALIBRATIONS:
            raise SettingsError(f"REGIME_CALIBRATION={self.calibration!r} is unknown; use one of "
                                f"{', '.join(CALIBRATIONS)}.")
        if self.label_lag < 0:
            raise SettingsError(f"REGIME_LABEL_LAG={self.label_lag} is negative; use 0 or more sessions.")
        if self.settle_sessions is not None and not 0 <= self.settle_sessions <= 1260:
            raise SettingsError(f"REGIME_SETTLE_SESSIONS={self.settle_sessions} is out of range; use 0…1260 sessions, "
                                "or unset it for the labeler's measured default.")
        if self.macro not in MACRO_INPUTS:
            raise SettingsError(f"REGIME_MACRO={self.macro!r} is unknown; use one of {', '.join(MACRO_INPUTS)}.")
        if self.macro_lag < 0:
            raise SettingsError(f"REGIME_MACRO_LAG={self.macro_lag} is negative; use 0 or more sessions (default 1).")

    def risk_off_threshold_value(self) -> float | str | None:
        """REGIME_RISK_OFF_THRESHOLD as the training code takes it: None (argmax), "tail" or a probability."""
        return _off_tail_or_number(self.risk_off_threshold, lambda p: 0 < p < 1,
                                   "REGIME_RISK_OFF_THRESHOLD={!r} is neither `off`, `tail` nor a probability between 0 "
                                   "and 1; use e.g. `tail` or 0.3.")

    def persistence_anchor_value(self) -> float | str | None:
        """REGIME_PERSISTENCE_ANCHOR as the training code takes it: None (off), "tail" or a probability."""
        return _off_tail_or_number(self.persistence_anchor, lambda p: 0.5 <= p <= 1,
                                   "REGIME_PERSISTENCE_ANCHOR={!r} is neither `off`, `tail` nor a probability between "
                                   "0.5 and 1; use e.g. `tail` or 0.9.")

    def recency_half_life_value(self) -> float | str | None:
        """REGIME_RECENCY_HALF_LIFE as the training code takes it: None (off), "tail" or a half-life in sessions."""
        return _off_tail_or_number(self.recency_half_life, lambda h: 0 < h < float("inf"),
                                   "REGIME_RECENCY_HALF_LIFE={!r} is neither `off`, `tail` nor a positive number of "
                                   "sessions; use e.g. `tail` or 756.")

    def settle_sessions_for(self, labeler: str) -> int:
        """S of DESIGN §3a for ``labeler``: 0 for a user's file (its label at d is the truth), else
        REGIME_SETTLE_SESSIONS or the labeler's measured default (benchmarks/bench_label_settling.py)."""
        if labeler == "user":
            return 0
        return self.settle_sessions if self.settle_sessions is not None else SETTLE_SESSIONS[labeler]

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def regimes_dir(self) -> Path:
        return self.data_dir / "regimes"

    def artifact_dir(self, asset_name: str, ticker: str | None = None) -> Path:
        """``artifacts/<asset_name>/<ticker>/``: where an asset's files of one ticker partition go, never outside the
        data dir."""
        parts = (asset_name, check_ticker_partition(ticker)) if ticker else (asset_name,)
        return inside(self.artifacts_dir, *parts)

    def user_labels_path(self, ticker: str) -> Path:
        """Your labels file for ``ticker`` (whether or not it exists): ``regimes/regime_labels_<TICKER>.csv``, or
        ``regimes/regime_labels.csv`` while one ticker is configured (a file that does not name its ticker cannot
        be told apart between several)."""
        own = inside(self.regimes_dir, f"regime_labels_{check_ticker_partition(ticker)}.csv")
        shared = self.regimes_dir / "regime_labels.csv"
        for path in (own, shared):
            if path.exists() and not path.is_file():
                raise SettingsError(f"{path} is a directory, not a labels file: remove it, or put your labels there as a "
                                    "CSV file (columns Date, regime).")
        if own.exists() or not shared.exists():
            return own
        if len(self.tickers) > 1:
            raise SettingsError(f"{shared} does not say which ticker it labels and REGIME_TICKERS lists "
                                f"{len(self.tickers)}: rename it to regime_labels_<TICKER>.csv (e.g. "
                                f"regime_labels_{self.tickers[0]}.csv).")
        return shared


def setting_fields() -> list[dataclasses.Field]:
    """The declared settings, in order (what the resource, the README table and the tests are built from)."""
    return list(dataclasses.fields(Settings))
