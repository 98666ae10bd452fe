"""Evaluation never pools targets versions: the rule, and the sentence that says what to re-materialize."""
from __future__ import annotations

import polars as pl


def pooling_refusal(stored: pl.DataFrame, ticker: str, current: str) -> str | None:
    """One sentence when some model has out-of-sample rows of ``ticker`` only under other targets versions than
    ``current`` (evaluating the rest would compare models judged on different targets), or when no model has rows
    of ``current`` at all; None when every model with rows has them under ``current``.

    ``stored``: model, targets_version, rows — what market.oos_predictions holds for the ticker.
    """
    if stored.is_empty():
        return (f"market.oos_predictions has no rows of {ticker}: materialize walk_forward_targets and the model "
                f"assets for {ticker} first.")
    current_models = set(stored.filter(pl.col("targets_version") == current)["model"].to_list())
    stale = stored.filter(~pl.col("model").is_in(sorted(current_models)))
    if not current_models:
        versions = ", ".join(sorted(set(stored["targets_version"].to_list())))
        return (f"market.oos_predictions holds rows of {ticker} only for targets version(s) {versions}, not the "
                f"current settings' {current}: re-materialize walk_forward_targets and the model assets for {ticker} "
                "(evaluation never pools versions).")
    if stale.is_empty():
        return None
    models = sorted(set(stale["model"].to_list()))
    versions = ", ".join(sorted(set(stale["targets_version"].to_list())))
    return (f"{', '.join(models)} {'has' if len(models) == 1 else 'have'} out-of-sample rows of {ticker} only for "
            f"targets version(s) {versions}, not the current {current}, so evaluation refuses to pool them with "
            f"{', '.join(sorted(current_models))}: re-materialize {', '.join(f'{m}_model' for m in models)} for "
            f"{ticker}.")
