"""Verify walk-forward fold records (``folds.json``) for leakage — the logic behind the ``no_leakage`` check.

Everything is recomputed from the dates in the records and the session list ``dates``; stored indices
such as ``first_test_t`` are cross-checked, never trusted. Checks:

* chronology: train_start ≤ train_end < test_start ≤ test_end in each fold; fold numbers increasing;
  test spans ordered and disjoint;
* embargo: ``(T - w + 1) - (t + h) >= w + h`` for the last training sample t and the first test sample T
  (session indices of ``train_end`` / ``test_start`` in ``dates``); ``train_target_end`` = session t + h;
* scaler fit range ⊆ the training sessions: ``scaler_fit_end ≤ train_end`` and ``scaler_fit_start`` not
  before the first training window's first session;
* validation tail inside the training span (``validation_end ≤ train_end``);
* labeler fit range ≤ ``train_target_end`` (skipped for a user's labels, whose fit range is None);
* features used ⊆ ``allowed_features`` when given;
* plus whatever ``feature_causality_check()`` reports (recomputing features on truncated prices is done
  by the caller).

Returns human-readable problems; an empty list means clean.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def verify_fold_records(
    records: Sequence[dict[str, Any]],
    dates: Sequence[dt.date],
    window: int,
    horizon: int,
    user_labels: bool,
    *,
    allowed_features: Iterable[str] | None = None,
    feature_causality_check: Callable[[], list[str]] | None = None,
) -> list[str]:
    problems: list[str] = []
    dates = [_date(d) for d in dates]
    index = {d: i for i, d in enumerate(dates)}
    w, h = int(window), int(horizon)
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
        tr_s, tr_e = _date(rec.get("train_start")), _date(rec.get("train_end"))
        te_s, te_e = _date(rec.get("test_start")), _date(rec.get("test_end"))
        tte = _date(rec.get("train_target_end"))
        i_trs, i_tre = idx(name, "train_start", tr_s), idx(name, "train_end", tr_e)
        i_tes, i_tee = idx(name, "test_start", te_s), idx(name, "test_end", te_e)

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
        sc_s, sc_e = _date(rec.get("scaler_fit_start")), _date(rec.get("scaler_fit_end"))
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

        # validation tail inside training
        v_e = _date(rec.get("validation_end"))
        if v_e is not None and tr_e is not None and v_e > tr_e:
            problems.append(f"{name}: validation tail ends {v_e}, past train_end {tr_e}")

        # labeler range
        lb_s, lb_e = _date(rec.get("labeler_fit_start")), _date(rec.get("labeler_fit_end"))
        if not user_labels:
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
            p_ts, p_te = _date(prev.get("test_start")), _date(prev.get("test_end"))
            if p_ts is not None and te_s is not None and te_s <= p_ts:
                problems.append(f"{name} tests from {te_s}, not after {pname} (from {p_ts}): folds are unordered")
            if p_te is not None and te_s is not None and te_s <= p_te:
                problems.append(f"{name}'s test span starts {te_s}, inside {pname}'s (to {p_te}): test spans overlap")
        prev = rec

    if feature_causality_check is not None:
        problems.extend(feature_causality_check())
    return problems
