"""The scope a per-ticker asset or check works on: its partition's ticker and that ticker's targets version under
the run's settings (:mod:`regime_platform.modeling.targets_version` defines both)."""
from __future__ import annotations

import dagster as dg

from regime_platform.modeling.targets_version import TickerScope, scope_for
from regime_platform.settings import check_ticker_partition


def ticker_scope(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, settings) -> TickerScope:
    """The scope of the ticker partition being materialized (or checked), under the run's settings; a partition key
    that is not a ticker symbol is refused in one sentence before any work."""
    return scope_for(settings.settings(), check_ticker_partition(context.partition_key))


__all__ = ["TickerScope", "scope_for", "ticker_scope"]
