"""Verify walk-forward fold records (``market.fold_records``) for leakage — the logic behind the ``no_leakage`` check.

Everything is recomputed from the dates in the records and the session list ``dates``; stored indices
such as ``first_test_t`` are cross-checked, never trusted. Checks:

* chronology: train_start ≤ train_end < test_start ≤ test_end in each fold; fold numbers increasing;
  test spans ordered and disjoint;
* embargo: ``(T - w + 1) - (t + h) >= w + h`` for the last training sample t and the first test sample T
  (session indices of ``train_end`` / ``test_start`` in ``dates``); ``train_target_end`` = session t + h;
* scaler fit range ⊆ the training sessions: ``scaler_fit_end ≤ train_end`` and ``scaler_fit_start`` not
  before the first training window's first session;
* validation tail inside the training span (``validation_end ≤ train_end``) and embargoed from the part fit on
  before it like a test span from its training span: ``(V - w + 1) - (f + h) >= w + h`` for the last sample f fit on
  (``epoch_selection_fit_end``) and the first tail sample V (``validation_start``), and every probe fit on the
  samples before the tail (epoch selection, inner-validation candidates) counted exactly that part's
  ``n_epoch_selection_fit`` samples in its own fit;
* calibration and feature selection read only the validation tail: the samples each records it read
  (``rows_start`` … ``rows_end`` of every model's and ensemble member's ``calibration``, and of the fold's
  ``feature_selection``) lie inside ``validation_start`` … ``validation_end``, and with temperature calibration every
  non-baseline model records its calibration;
* labeler fit range ≤ ``train_target_end`` (for a user's labels the fit range must be None);
* window, horizon and labeler are read from each record: every record must name them, and they are
  cross-checked against the stored labels (``stored_labeler``: a user's file ⇔ ``user_labels``);
* features used ⊆ ``allowed_features`` when given;
* the scaler's recorded mean equals a recomputation from the stored features over its recorded range
  (``features``: a frame with ``date`` and the feature columns), so a record cannot claim a range it was
  not fit on;
* plus whatever ``feature_causality_check()`` reports (recomputing features on truncated prices is done
  by the caller). The check also recomputes ``known_regime`` at sampled dates
  (:mod:`regime_platform.modeling.known_regime`).

Returns human-readable problems; an empty list means clean.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from regime_platform.models import MODELS


def as_date(value: Any) -> dt.date | None:
    """A stored date value (date, datetime or ISO text) as a date; None stays None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


SCALER_TOLERANCE = 1e-6


def verify_fold_records(
    records: Sequence[dict[str, Any]],
    dates: Sequence[dt.date],
    *,
    stored_labeler: str | None = None,
    allowed_features: Iterable[str] | None = None,
    features: Any = None,
    feature_causality_check: Callable[[], list[str]] | None = None,
) -> list[str]:
    problems: list[str] = []
    dates = [as_date(d) for d in dates]
    index = {d: i for i, d in enumerate(dates)}
    allowed = set(allowed_features) if allowed_features is not None else None

    if not records:
        problems.append("no fold records: nothing was trained, so nothing can be verified")

    def idx(fold_name: str, field: str, value: dt.date | None) -> int | None:
        if value is None:
            problems.append(f"{fold_name}: {field} is missing")
            return None
        if value not in index:
            problems.append(f"{fold_name}: {field} {value} is not a session in the date list")
            return None
        return index[value]

    prev: dict[str, Any] | None = None
    for rec in records:
        name = f"fold {rec.get('fold')}"
        if rec.get("window") is None or rec.get("horizon") is None or "user_labels" not in rec:
            problems.append(f"{name}: the record does not say its window, horizon and whether labels were the "
                            "user's; re-materialize the model")
            continue
        w, h, user_labels = int(rec["window"]), int(rec["horizon"]), bool(rec["user_labels"])
        if stored_labeler is not None:
            if user_labels != (stored_labeler == "user"):
                problems.append(f"{name}: trained on {'a user file' if user_labels else rec.get('labeler')!r} labels "
                                f"but market.regime_labels holds {stored_labeler!r}: re-materialize the model")
            elif not user_labels and rec.get("labeler") != stored_labeler:
                problems.append(f"{name}: labeler {rec.get('labeler')!r} differs from the stored labels' "
                                f"{stored_labeler!r}: re-materialize the model")
        tr_s, tr_e = as_date(rec.get("train_start")), as_date(rec.get("train_end"))
        te_s, te_e = as_date(rec.get("test_start")), as_date(rec.get("test_end"))
        tte = as_date(rec.get("train_target_end"))
        i_trs, i_tre = idx(name, "train_start", tr_s), idx(name, "train_end", tr_e)
        i_tes = idx(name, "test_start", te_s)
        idx(name, "test_end", te_e)  # records a problem when test_end is not a session

        # chronology inside the fold
        if None not in (tr_s, tr_e) and tr_s > tr_e:
            problems.append(f"{name}: train_start {tr_s} is after train_end {tr_e}")
        if None not in (te_s, te_e) and te_s > te_e:
            problems.append(f"{name}: test_start {te_s} is after test_end {te_e}")
        if None not in (tr_e, te_s) and tr_e >= te_s:
            problems.append(f"{name}: training ends {tr_e}, not before the test span starting {te_s} (overlap)")

        # embargo
        if i_tre is not None and i_tes is not None:
            gap = (i_tes - w + 1) - (i_tre + h)
            if gap < w + h:
                problems.append(
                    f"{name}: embargo too short — {gap} sessions between the last training target "
                    f"(t + h = session {i_tre + h}) and the first test window (starts at session {i_tes - w + 1}); "
                    f"need ≥ {w + h} (last training t ≤ T − {2 * w + 2 * h - 1})"
                )
            if i_tre + h < len(dates):
                expected_tte = dates[i_tre + h]
                if tte is None:
                    problems.append(f"{name}: train_target_end is missing")
                elif tte != expected_tte:
                    problems.append(
                        f"{name}: train_target_end {tte} is not session train_end + {h} ({expected_tte})"
                    )
            for field, expected in (("first_test_t", i_tes), ("last_train_t", i_tre)):
                if rec.get(field) is not None and int(rec[field]) != expected:
                    problems.append(f"{name}: stored {field}={rec[field]} but the dates give {expected}")

        # scaler range ⊆ training sessions
        sc_s, sc_e = as_date(rec.get("scaler_fit_start")), as_date(rec.get("scaler_fit_end"))
        if sc_s is None or sc_e is None:
            problems.append(f"{name}: scaler fit range is not recorded")
        else:
            if tr_e is not None and sc_e > tr_e:
                problems.append(f"{name}: scaler fit to {sc_e}, past the last training session {tr_e}")
            if i_trs is not None:
                first_row = dates[max(0, i_trs - w + 1)]
                if sc_s < first_row:
                    problems.append(f"{name}: scaler fit from {sc_s}, before the first training window ({first_row})")
            if sc_s > sc_e:
                problems.append(f"{name}: scaler fit range {sc_s} … {sc_e} is reversed")
            elif features is not None and rec.get("scaler") and rec.get("features"):
                problems.extend(_scaler_problems(name, rec, sc_s, sc_e, features))

        # validation tail inside training, embargoed from the part fit on before it
        v_e = as_date(rec.get("validation_end"))
        if v_e is not None and tr_e is not None and v_e > tr_e:
            problems.append(f"{name}: validation tail ends {v_e}, past train_end {tr_e}")
        problems.extend(_tail_embargo_problems(name, rec, w, h, index, dates))
        problems.extend(_tail_read_problems(name, rec))

        # labeler range
        lb_s, lb_e = as_date(rec.get("labeler_fit_start")), as_date(rec.get("labeler_fit_end"))
        if user_labels:
            if lb_s is not None or lb_e is not None:
                problems.append(f"{name}: a user's labels file has no labeler fit range, yet one is recorded")
        else:
            if lb_e is None:
                problems.append(f"{name}: labeler fit range is not recorded for a generated labeler")
            elif tte is not None and lb_e > tte:
                problems.append(
                    f"{name}: labeler fit to {lb_e}, past the last training target {tte} — test-period data "
                    "shaped the regime definition"
                )
            if lb_s is not None and lb_e is not None and lb_s > lb_e:
                problems.append(f"{name}: labeler fit range {lb_s} … {lb_e} is reversed")

        # features
        if allowed is not None:
            extra = sorted(set(rec.get("features") or []) - allowed)
            if extra:
                problems.append(f"{name}: features outside the allowed list: {', '.join(extra)}")

        # order across folds
        if prev is not None:
            pname = f"fold {prev.get('fold')}"
            if rec.get("fold") is not None and prev.get("fold") is not None and rec["fold"] <= prev["fold"]:
                problems.append(f"{name} comes after {pname}: folds are not in increasing order")
            p_ts, p_te = as_date(prev.get("test_start")), as_date(prev.get("test_end"))
            if p_ts is not None and te_s is not None and te_s <= p_ts:
                problems.append(f"{name} tests from {te_s}, not after {pname} (from {p_ts}): folds are unordered")
            if p_te is not None and te_s is not None and te_s <= p_te:
                problems.append(f"{name}'s test span starts {te_s}, inside {pname}'s (to {p_te}): test spans overlap")
        prev = rec

    if feature_causality_check is not None:
        problems.extend(feature_causality_check())
    return problems


def _tail_embargo_problems(name: str, rec: dict[str, Any], w: int, h: int, index: dict[dt.date, int],
                           dates: list[dt.date]) -> list[str]:
    """The inner validation tail is embargoed from the samples fit before it, and the probes fit on exactly those."""
    v_s, f_e = as_date(rec.get("validation_start")), as_date(rec.get("epoch_selection_fit_end"))
    if v_s is None:
        return []  # no tail: nothing was chosen on one
    if f_e is None:
        return [f"{name}: the validation tail starts {v_s} but the end of the part fit before it "
                "(epoch_selection_fit_end) is not recorded; re-materialize the model"]
    if v_s not in index or f_e not in index:
        return [f"{name}: validation_start {v_s} or epoch_selection_fit_end {f_e} is not a session in the date list"]
    i_v, i_f = index[v_s], index[f_e]
    problems = []
    gap = (i_v - w + 1) - (i_f + h)
    if gap < w + h:
        problems.append(
            f"{name}: validation tail embargo too short — {gap} sessions between the last target fit before the tail "
            f"({dates[min(i_f + h, len(dates) - 1)]}, session {i_f + h}) and the first tail window (starts "
            f"{dates[max(i_v - w + 1, 0)]}); need ≥ {w + h}, so the tail the epochs, capacity, dwell and temperature "
            "are chosen on overlaps what the probes learnt from")
    n_part = rec.get("n_epoch_selection_fit")
    for model, info in (rec.get("models") or {}).items():
        measured = {"epoch selection": info.get("n_epoch_selection_fit"),
                    "inner validation": (info.get("inner_validation") or {}).get("n_fit")
                    if (info.get("inner_validation") or {}).get("candidates") else None}
        for what, n in measured.items():
            if n is not None and n_part is not None and int(n) != int(n_part):
                problems.append(f"{name}: {model}'s {what} fit counted {n} samples, but the part before the tail "
                                f"holds {n_part}: it was fit on other rows than the record says")
    return problems


def _tail_read_problems(name: str, rec: dict[str, Any]) -> list[str]:
    """Calibration and feature selection read samples inside the validation tail only, by their own records."""
    v_s, v_e = as_date(rec.get("validation_start")), as_date(rec.get("validation_end"))
    problems: list[str] = []
    reads: list[tuple[str, dict[str, Any]]] = []
    if rec.get("feature_selection"):
        reads.append(("feature selection", rec["feature_selection"]))
    for model, info in (rec.get("models") or {}).items():
        spec = MODELS.get(model)
        members = info.get("member_calibration")
        if spec is not None and spec.composite:
            calibrations = {f"{model} member {m}": c for m, c in (members or {}).items()}
            if not calibrations:
                problems.append(f"{name}: {model} records no member calibration; re-materialize the model")
        else:
            calibrations = {model: info.get("calibration")}
        for who, calibration in calibrations.items():
            if calibration:
                reads.append((f"{who}'s calibration", calibration))
            elif rec.get("calibration") == "temperature" and spec is not None and not spec.is_baseline:
                problems.append(f"{name}: {who} records no calibration although REGIME_CALIBRATION=temperature; "
                                "re-materialize the model")
    for what, read in reads:
        if "n_rows" not in read:
            problems.append(f"{name}: {what} does not record the samples it read; re-materialize the model")
            continue
        if not read["n_rows"]:
            continue  # it read nothing (no tail, or the tail could not choose): nothing can have leaked
        r_s, r_e = as_date(read.get("rows_start")), as_date(read.get("rows_end"))
        if v_s is None or v_e is None:
            problems.append(f"{name}: {what} read {read['n_rows']} samples ({r_s} … {r_e}) although the training span "
                            "has no validation tail")
        elif r_s is None or r_e is None or r_s < v_s or r_e > v_e:
            problems.append(f"{name}: {what} read samples {r_s} … {r_e}, outside the validation tail {v_s} … {v_e}: "
                            "it was fit on rows a model trained on (or on later ones), not on the held-out tail")
    return problems


def _scaler_problems(name: str, rec: dict[str, Any], start: dt.date, end: dt.date, features: Any) -> list[str]:
    """Recompute the scaler's mean from the stored features over its recorded range (complete rows)."""
    import numpy as np
    import polars as pl

    cols = list(rec["features"])
    missing = [c for c in cols if c not in features.columns]
    if missing:
        return [f"{name}: the stored features lack {missing}, so the scaler cannot be verified"]
    rows = features.filter(pl.col("date").is_between(start, end)).select(cols).drop_nulls().to_numpy()
    recorded = np.asarray(rec["scaler"]["mean"], dtype=np.float64)
    if rows.shape[0] == 0 or recorded.shape != (len(cols),):
        return [f"{name}: no stored feature rows in the scaler's range {start} … {end} to verify it against"]
    err = np.abs(rows.mean(axis=0) - recorded) / np.maximum(1.0, np.abs(recorded))
    if err.max() > SCALER_TOLERANCE:
        worst = cols[int(err.argmax())]
        return [f"{name}: the scaler's recorded mean of {worst} differs by {err.max():.1e} from the stored features "
                f"over its recorded range {start} … {end}: it was fit on other rows"]
    return []


def verify_oos_rows(records: Sequence[dict[str, Any]], oos: Any, dates: Sequence[dt.date]) -> list[str]:
    """Every stored out-of-sample row (``oos``: model, fold, as_of, target_date, horizon) lies inside the
    verified test span of its fold and horizon, and its target is the session ``horizon`` after ``as_of``."""
    import polars as pl

    if oos is None or oos.is_empty():
        return ["market.oos_predictions holds no rows for this model: materialize it"]
    dates = [as_date(d) for d in dates]
    index = {d: i for i, d in enumerate(dates)}
    spans = {(int(r["horizon"]), int(r["fold"])): (as_date(r["test_start"]), as_date(r["test_end"]))
             for r in records if r.get("horizon") is not None and r.get("fold") is not None}
    problems: list[str] = []
    for (horizon, fold), group in oos.group_by(["horizon", "fold"], maintain_order=True):
        span = spans.get((int(horizon), int(fold)))
        if span is None:
            problems.append(f"{group.height} stored rows of horizon {horizon}, fold {fold} have no fold record")
            continue
        outside = group.filter(~pl.col("as_of").is_between(span[0], span[1]))
        if outside.height:
            problems.append(f"horizon {horizon}, fold {fold}: {outside.height} stored rows lie outside the test span "
                            f"{span[0]} … {span[1]} (first {outside['as_of'][0]})")
        for as_of, target in zip(group["as_of"].to_list(), group["target_date"].to_list()):
            i = index.get(as_of)
            if i is None or i + int(horizon) >= len(dates) or dates[i + int(horizon)] != target:
                problems.append(f"horizon {horizon}, fold {fold}: the row as of {as_of} targets {target}, not the "
                                f"session {horizon} after it")
                break
    return problems
