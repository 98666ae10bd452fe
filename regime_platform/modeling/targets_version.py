"""Which targets a model learned and was scored against: the targets version, and the scope (ticker, version) every
model and evaluation table is keyed by (DESIGN §2).

What shapes a ticker's targets: the labeler (or the user's file, by content), the horizon, and the settings the
walk-forward's folds and windows follow. Data arriving later does not change the version (it names the recipe, not
the rows); a changed recipe is a new version, and no reader ever pools two.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from regime_platform.labels.user_file import file_fingerprint
from regime_platform.settings import Settings

TARGET_SHAPING_SETTINGS = ("window", "label_lag", "max_folds", "features", "start", "settle_sessions")


def targets_version(labeler: str, horizon: int, shaping: dict[str, Any], labels_file_sha256: str | None = None) -> str:
    """``<labeler>-h<horizon>-<hash8>``, the hash over ``shaping`` (the TARGET_SHAPING_SETTINGS) and, for a user's
    file, its content."""
    blob = json.dumps({"labeler": labeler, "horizon": int(horizon), "labels_file": labels_file_sha256,
                       **{k: shaping[k] for k in TARGET_SHAPING_SETTINGS},
                       # the macro inputs shape what a model learns from; `off` (the default) keeps earlier versions
                       **({"macro": shaping["macro"]} if shaping.get("macro", "off") != "off" else {})},
                      sort_keys=True, default=str)
    return f"{labeler}-h{int(horizon)}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class TickerScope:
    """One ticker and the version of its targets under the current settings."""

    ticker: str
    targets_version: str
    labeler: str  # the labeler the settings ask for: `user` when the ticker's labels file exists
    settings: Settings

    @property
    def key(self) -> dict[str, str]:
        """The table scope (ticker, targets_version) every model and evaluation table is keyed by."""
        return {"ticker": self.ticker, "targets_version": self.targets_version}

    @property
    def horizon(self) -> int:
        return self.settings.horizon

    def describe(self) -> str:
        return f"{self.ticker}, targets {self.targets_version}"


def scope_for(settings: Settings, ticker: str) -> TickerScope:
    """The scope of ``ticker`` under ``settings``."""
    sha = file_fingerprint(settings.user_labels_path(ticker))
    labeler = "user" if sha else settings.labeler
    shaping = {name: getattr(settings, name) for name in (*TARGET_SHAPING_SETTINGS, "macro")}
    if labeler != "user":
        shaping["label_lag"] = 0  # only a user's file reads the label lag
    shaping["settle_sessions"] = settings.settle_sessions_for(labeler)  # the truth's rule (0 for a user's file)
    return TickerScope(ticker, targets_version(labeler, settings.horizon, shaping, sha), labeler, settings)
