"""A user's regime labels file (data/regimes/regime_labels_<TICKER>.csv, or regime_labels.csv with one ticker),
validated strictly.

Exactly the columns `Date` (YYYY-MM-DD, XNYS sessions only, none missing between the first and last) and
`regime` (integers 0..K−1, K ≥ 2, every id present), optionally `regime_name`. Every problem is reported
at once, each with file, line, column and value.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from pathlib import Path

import polars as pl

from regime_platform import calendar
from regime_platform.labels.names import regime_name

REQUIRED = ["Date", "regime"]
OPTIONAL = ["regime_name"]
MAX_REPORTED = 20
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT = re.compile(r"^(0|-?[1-9]\d*)$")  # a plain integer: no sign on 0 or positives, no leading zeros


class LabelFileError(ValueError):
    """The labels file is unusable; the message lists every problem with file, line, column and value."""

    def __init__(self, path: Path, problems: list[str]):
        self.path, self.problems = path, problems
        shown = problems[:MAX_REPORTED] + ([f"… and {len(problems) - MAX_REPORTED} more"]
                                           if len(problems) > MAX_REPORTED else [])
        super().__init__(f"{path} is not a valid labels file (nothing was changed; fix it and re-materialize "
                         "regime_labels):\n" + "\n".join(f"- {p}" for p in shown))


def _read_rows(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    if not raw.strip():
        raise LabelFileError(path, [f"{path}: the file is empty; it needs a header `Date,regime` and one row per session"])
    if b"\x00" in raw[:4096]:
        raise LabelFileError(path, [f"{path}: this is a binary file, not CSV text"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LabelFileError(path, [f"{path}: not UTF-8 text; save it as a UTF-8 CSV"]) from None
    if text.lstrip().lower().startswith(("<!doctype", "<html", "<?xml")):
        raise LabelFileError(path, [f"{path}: this is an HTML/XML page, not CSV (a failed download?)"])
    return list(csv.reader(text.splitlines()))


def read_user_labels(path: Path, sessions: list[dt.date] | None = None) -> pl.DataFrame:
    """Columns date, regime, regime_name, sorted by date; raises LabelFileError listing every problem.

    `sessions`, when given, are the dates that have price history: a file that overlaps none is an error.
    """
    path = Path(path)
    rows = _read_rows(path)
    header = rows[0]  # exactly as written: ` Date ` is not `Date`
    problems: list[str] = []
    for column in header:
        if column not in REQUIRED + OPTIONAL:
            hint = next((r for r in REQUIRED + OPTIONAL if r.lower() == column.strip().lower()), None)
            problems.append(f"{path}, line 1: column {column!r} is not allowed"
                            + (f" (spelled {hint!r} exactly)" if hint else "; allowed: Date, regime, regime_name"))
    for column in REQUIRED:
        if column not in header:
            problems.append(f"{path}, line 1: required column {column!r} is missing (header is {','.join(header)})")
    if len(set(header)) != len(header):
        problems.append(f"{path}, line 1: a column appears twice in the header {','.join(header)}")
    if problems:
        raise LabelFileError(path, problems)
    at = {name: header.index(name) for name in header}
    dates: list[dt.date] = []
    regimes: list[int] = []
    names: list[str | None] = []
    lines: list[int] = []
    seen: dict[dt.date, int] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            problems.append(f"{path}, line {lineno}: {len(row)} fields, the header has {len(header)}: {','.join(row)!r}")
            continue
        cells = {name: row[i] for name, i in at.items()}
        day, regime = cells["Date"], cells["regime"]
        parsed_day = parsed_regime = None
        if not day:
            problems.append(f"{path}, line {lineno}, column Date: empty")
        elif not _DATE.match(day):
            problems.append(f"{path}, line {lineno}, column Date: {day!r} is not YYYY-MM-DD")
        else:
            try:
                parsed_day = dt.date.fromisoformat(day)
            except ValueError:
                problems.append(f"{path}, line {lineno}, column Date: {day!r} is not a calendar date")
        if not regime:
            problems.append(f"{path}, line {lineno}, column regime: empty")
        elif not _INT.match(regime):
            problems.append(f"{path}, line {lineno}, column regime: {regime!r} is not a plain integer id "
                            "(write 0, 1, 2 … without sign, leading zeros or spaces)")
        elif int(regime) < 0:
            problems.append(f"{path}, line {lineno}, column regime: {regime!r} is negative; ids are 0..K-1")
        else:
            parsed_regime = int(regime)
        if "regime_name" in cells and not cells["regime_name"]:
            problems.append(f"{path}, line {lineno}, column regime_name: empty")
        if parsed_day is not None:
            if parsed_day in seen:
                problems.append(f"{path}, line {lineno}, column Date: {day} repeats line {seen[parsed_day]}")
            elif not calendar.in_range(parsed_day):
                problems.append(f"{path}, line {lineno}, column Date: {day} is outside the exchange calendar "
                                f"({calendar.first_day()} … {calendar.last_day()}); remove the row")
            elif not calendar.is_session(parsed_day):
                problems.append(f"{path}, line {lineno}, column Date: {day} is not an XNYS trading session "
                                "(weekend or exchange holiday)")
            seen.setdefault(parsed_day, lineno)
        if parsed_day is not None and parsed_regime is not None:
            dates.append(parsed_day)
            regimes.append(parsed_regime)
            names.append(cells.get("regime_name"))
            lines.append(lineno)
    if not dates and not problems:
        problems.append(f"{path}: no label rows under the header")
    if dates:
        ids = sorted(set(regimes))
        if len(ids) < 2:
            problems.append(f"{path}, column regime: only one class ({ids[0]}); at least two regimes are needed")
        missing_ids = [i for i in range(max(ids) + 1) if i not in ids]
        if missing_ids:
            problems.append(f"{path}, column regime: ids must be 0..K-1 with every id present; "
                            f"{missing_ids} never appear (ids found: {ids})")
        by_id: dict[int, set] = {}
        for regime, name in zip(regimes, names):
            if name is not None:
                by_id.setdefault(regime, set()).add(name)
        for regime, found in sorted(by_id.items()):
            if len(found) > 1:
                problems.append(f"{path}, column regime_name: regime {regime} has several names {sorted(found)}")
        ordered = sorted(set(dates))
        gaps = [d for d in calendar.sessions(ordered[0], ordered[-1]) if d not in seen]
        if gaps:
            problems.append(f"{path}, column Date: {len(gaps)} sessions between {ordered[0]} and {ordered[-1]} "
                            f"have no label, first {gaps[0]}")
        if sessions is not None and not set(dates) & set(sessions):
            problems.append(f"{path}: no label date overlaps the price history "
                            f"({min(sessions) if sessions else 'none'} … {max(sessions) if sessions else 'none'})")
    if problems:
        raise LabelFileError(path, problems)
    frame = pl.DataFrame({"date": dates, "regime": regimes,
                          "regime_name": [n if n is not None else regime_name(r) for r, n in zip(regimes, names)]},
                         schema={"date": pl.Date, "regime": pl.Int32, "regime_name": pl.Utf8})
    return frame.sort("date")


def file_fingerprint(path: Path) -> str | None:
    """The sha256 of a labels file's content, None when there is no file (what versions a user's targets)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
