"""The fold records a model asset stores, and what ties them to its other writes.

A model asset writes three things: its out-of-sample rows, the fold records that ``no_leakage`` verifies them against
(ranges, embargo, scaler, labeler, fit sizes: :func:`regime_platform.modeling.walk_forward.fold_record`), and the
production model. The rows and the records go into the warehouse in one transaction (``market.oos_predictions`` and
``market.fold_records``), so a reader sees both of one run or both of the previous one. The production model is saved
afterwards, as one generation of its artifact directory, by the IO manager: no transaction spans the two stores. So
the records carry a digest, the *walk-forward digest* — SHA-256 over the records and the rows stored with them — and
the production model the same run fit carries it too: a mismatch (a run that died after committing its rows, before
its model was saved; rows changed by another writer) is found and said in one sentence.

Records are stored without run times, so that the same inputs store the same rows (the determinism and kill tests
compare every table). No Dagster and no SQL here.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import polars as pl

from regime_platform.storage.files import to_jsonable

# the oos columns the digest covers, in this order (market.oos_predictions without its ticker and version keys)
DIGEST_COLUMNS = ("model", "fold", "as_of", "target_date", "horizon", "predicted_regime", "probabilities",
                  "true_regime", "known_regime")


def walk_forward_digest(records: Sequence[dict[str, Any]], oos: pl.DataFrame) -> str:
    """16 hex of SHA-256 over ``records`` (as stored: JSON-able) and the rows ``oos`` in a canonical order: the same
    for the frame a run computed and for the rows the warehouse gives back."""
    rows = oos.select(DIGEST_COLUMNS).sort("model", "horizon", "fold", "as_of").rows()
    blob = json.dumps(to_jsonable({"records": list(records), "rows": rows}), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def record_rows(records: Sequence[dict[str, Any]], digest: str) -> pl.DataFrame:
    """``market.fold_records`` rows (without the ticker, version and model keys): one per fold, its record as JSON."""
    stored = to_jsonable(list(records))
    return pl.DataFrame({"fold": [int(r["fold"]) for r in stored], "horizon": [int(r["horizon"]) for r in stored],
                         "record": [json.dumps(r, allow_nan=True) for r in stored],
                         "walk_forward_digest": [digest] * len(stored)},
                        schema={"fold": pl.Int32, "horizon": pl.Int32, "record": pl.String,
                                "walk_forward_digest": pl.String})


def records_from_rows(rows: pl.DataFrame) -> tuple[list[dict[str, Any]], str | None]:
    """The records (in fold order) and the digest of stored ``market.fold_records`` rows; ([], None) when none."""
    if rows.is_empty():
        return [], None
    ordered = rows.sort("horizon", "fold")
    digests = ordered["walk_forward_digest"].unique().to_list()
    return [json.loads(r) for r in ordered["record"].to_list()], (digests[0] if len(digests) == 1 else None)


def consistency_problems(records: Sequence[dict[str, Any]], stored_digest: str | None, oos: pl.DataFrame,
                         model: tuple[bool, str | None], *, where: str, rerun: str, model_directory: str) -> list[str]:
    """One sentence when the stored records, rows and production model of one model are not of one run: the rows are
    not the ones the records were stored with, or the production model (``model``: whether one is saved, and the
    digest it records) was saved by another run, or by none. ``where`` names them ("logistic for SPY, targets …"),
    ``rerun`` is what to re-materialize ("logistic_model for SPY")."""
    if not records:
        return []
    found, (saved, model_digest) = walk_forward_digest(records, oos), model
    if stored_digest is None or found != stored_digest:
        return [f"the stored out-of-sample rows of {where} are not the rows its fold records in market.fold_records "
                f"were stored with (walk-forward digest {found}, {stored_digest or 'none or several'} recorded): "
                f"another writer changed them since; re-materialize {rerun}"]
    if not saved:
        return [f"no production model is saved in {model_directory} beside the stored rows and fold records of "
                f"{where}: the run that stored them stopped before saving its model; re-materialize {rerun}"]
    behind = saved_by_another_run(model_digest, stored_digest, where=where, rerun=rerun,
                                  model_directory=model_directory)
    return [behind] if behind else []


def saved_by_another_run(model_digest: str | None, stored_digest: str | None, *, where: str, rerun: str,
                         model_directory: str) -> str | None:
    """One sentence when a production model (its recorded walk-forward digest) is not of the run that stored the rows
    and fold records (theirs, None when none are stored): `no_leakage` fails on it, and the ledger, which forecasts
    with that model meanwhile, warns with it."""
    if stored_digest is None or model_digest == stored_digest:
        return None
    return (f"the production model in {model_directory} was saved by another run than the stored rows and fold "
            f"records of {where} (walk-forward digest {model_digest or 'none recorded'}, the rows' "
            f"{stored_digest}): the run that stored them stopped before saving its model; re-materialize {rerun}")
