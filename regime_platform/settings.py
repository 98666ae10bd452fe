"""Settings read from the environment (each has a Dagster resource/config equivalent in defs/)."""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

SOURCES = ("auto", "yfinance", "stooq", "csv", "sample")
LABELERS = ("jump", "kmeans", "hmm", "drawdown")
HORIZONS = (1, 5, 21)


class SettingsError(ValueError):
    """A setting has a value the platform cannot use; the message names the variable."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer; set it to a whole number such as {default}.") from None


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    source: str = "auto"
    ticker: str = "SPY"
    start: dt.date = dt.date(2000, 1, 3)
    horizon: int = 5
    window: int = 30
    labeler: str = "jump"
    label_lag: int = 0
    epochs: int = 30
    max_folds: int | None = None  # None = every walk-forward fold; tests and quick looks use fewer
    stooq_api_key: str | None = field(default=None, repr=False)
    ohlcv_csv: Path | None = None

    @classmethod
    def from_env(cls) -> "Settings":
        start_raw = _env("REGIME_START", "2000-01-03")
        try:
            start = dt.date.fromisoformat(start_raw)
        except ValueError:
            raise SettingsError(f"REGIME_START={start_raw!r} is not a date; use YYYY-MM-DD, e.g. 2000-01-03.") from None
        settings = cls(
            data_dir=Path(_env("REGIME_DATA_DIR", "data")),
            source=_env("REGIME_SOURCE", "auto").lower(),
            ticker=_env("REGIME_TICKER", "SPY").upper(),
            start=start,
            horizon=_env_int("REGIME_HORIZON", 5),
            window=_env_int("REGIME_WINDOW", 30),
            labeler=_env("REGIME_LABELER", "jump").lower(),
            label_lag=_env_int("REGIME_LABEL_LAG", 0),
            epochs=_env_int("REGIME_EPOCHS", 30),
            max_folds=_env_int("REGIME_MAX_FOLDS", 0) or None,
            stooq_api_key=os.environ.get("STOOQ_API_KEY") or None,
            ohlcv_csv=Path(os.environ["REGIME_OHLCV_CSV"]) if os.environ.get("REGIME_OHLCV_CSV") else None,
        )
        settings.validate()
        return settings

    def validate(self) -> None:
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
            raise SettingsError(f"REGIME_MAX_FOLDS={self.max_folds} must be at least 1 (unset = every fold).")
        if self.label_lag < 0:
            raise SettingsError(f"REGIME_LABEL_LAG={self.label_lag} is negative; use 0 or more sessions.")

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def user_labels_path(self) -> Path:
        return self.data_dir / "regimes" / "regime_labels.csv"
