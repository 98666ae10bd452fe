"""The version of a set of labels: which labeler, through which date, and a hash of every (date, regime) it assigns.

What a ledger row records twice: the labels its known regime came from (`known_labels_version`) and the labels that
scored it (`labels_version`)."""
from __future__ import annotations

import hashlib

import polars as pl


def labels_version(labels: pl.DataFrame) -> str:
    """`<labeler>-<last labelled date>-<hash8>`: the hash covers every (date, regime) the labels assign."""
    if labels.is_empty():
        return "none"
    ordered = labels.sort("date")
    blob = "\n".join(f"{d},{r}" for d, r in zip(ordered["date"].to_list(), ordered["regime"].to_list()))
    labeler = str(ordered["labeler"][0]) if "labeler" in ordered.columns else "labels"
    return f"{labeler}-{ordered['date'][-1]}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"
