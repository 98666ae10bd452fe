"""A user's labels file: every malformed file fails naming what is wrong; a good file round-trips exactly."""
from __future__ import annotations

import datetime as dt

import pytest

from regime_platform import calendar
from regime_platform.labels import LabelFileError, read_user_labels

DAYS = [d.isoformat() for d in calendar.sessions("2018-01-02", "2018-01-31")]  # 21 sessions


def good_rows(names=False):
    rows = [f"{d},{i % 2}" + (f",{'calm' if i % 2 == 0 else 'stormy'}" if names else "") for i, d in enumerate(DAYS)]
    return ("Date,regime" + (",regime_name" if names else "")), rows


def write(tmp_path, header, rows, name="regime_labels.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_good_file_round_trips_exactly(tmp_path):
    header, rows = good_rows(names=True)
    frame = read_user_labels(write(tmp_path, header, rows))
    assert [d.isoformat() for d in frame["date"]] == DAYS
    assert frame["regime"].to_list() == [i % 2 for i in range(len(DAYS))]
    assert frame["regime_name"].to_list()[:2] == ["calm", "stormy"]


def test_names_default_to_regime_id(tmp_path):
    header, rows = good_rows()
    assert read_user_labels(write(tmp_path, header, rows))["regime_name"][1] == "regime 1"


def mutate(index, value):
    header, rows = good_rows()
    rows = list(rows)
    rows[index] = value
    return header, rows


CASES = {
    "lowercase date header": (lambda: ("date,regime", good_rows()[1]), ["'date'", "line 1", "'Date' exactly"]),
    "Regime capitalised": (lambda: ("Date,Regime", good_rows()[1]), ["'Regime'", "'regime' exactly"]),
    "label instead of regime": (lambda: ("Date,label", good_rows()[1]), ["'label' is not allowed", "'regime' is missing"]),
    "extra column": (lambda: ("Date,regime,confidence", [r + ",0.9" for r in good_rows()[1]]), ["'confidence'"]),
    "missing regime column": (lambda: ("Date", DAYS), ["'regime' is missing"]),
    "duplicate header": (lambda: ("Date,regime,regime", [r + ",1" for r in good_rows()[1]]), ["appears twice"]),
    "US date format": (lambda: mutate(3, "01/05/2018,1"), ["line 5", "column Date", "'01/05/2018'"]),
    "impossible date": (lambda: mutate(3, "2018-02-30,1"), ["line 5", "'2018-02-30' is not a calendar date"]),
    "duplicate date": (lambda: mutate(3, f"{DAYS[2]},1"), ["line 5", "repeats line 4"]),
    "weekend": (lambda: mutate(3, "2018-01-06,1"), ["line 5", "2018-01-06 is not an XNYS trading session"]),
    "holiday": (lambda: mutate(10, "2018-01-15,1"), ["line 12", "2018-01-15 is not an XNYS"]),
    "float regime": (lambda: mutate(3, f"{DAYS[3]},1.5"), ["line 5", "column regime", "'1.5' is not a plain integer"]),
    "text regime": (lambda: mutate(3, f"{DAYS[3]},bull"), ["line 5", "'bull' is not a plain integer"]),
    "negative regime": (lambda: mutate(3, f"{DAYS[3]},-1"), ["line 5", "'-1' is negative"]),
    "empty regime": (lambda: mutate(3, f"{DAYS[3]},"), ["line 5", "column regime: empty"]),
    "empty date": (lambda: mutate(3, ",1"), ["line 5", "column Date: empty"]),
    "too many fields": (lambda: mutate(3, f"{DAYS[3]},1,2"), ["line 5", "3 fields, the header has 2"]),
    "ids skip one": (lambda: ("Date,regime", [f"{d},{0 if i % 2 else 2}" for i, d in enumerate(DAYS)]),
                     ["[1] never appear"]),
    "one class": (lambda: ("Date,regime", [f"{d},0" for d in DAYS]), ["only one class"]),
    "missing session": (lambda: ("Date,regime", [r for i, r in enumerate(good_rows()[1]) if i != 7]),
                        ["1 sessions between", "first 2018-01-11"]),
    "inconsistent names": (lambda: ("Date,regime,regime_name",
                                    [f"{d},{i % 2},{'calm' if i != 4 else 'quiet'}" if i % 2 == 0 else f"{d},1,storm"
                                     for i, d in enumerate(DAYS)]), ["regime 0 has several names"]),
    "header only": (lambda: ("Date,regime", []), ["no label rows"]),
    # the rules are exact: no stripped headers, no signs or leading zeros, no dates the calendar cannot judge
    "padded header": (lambda: (" Date , regime ", good_rows()[1]), ["' Date ' is not allowed", "'Date' exactly",
                                                                   "' regime ' is not allowed"]),
    "plus-signed id": (lambda: mutate(3, f"{DAYS[3]},+0"), ["line 5", "'+0' is not a plain integer"]),
    "zero-padded id": (lambda: mutate(3, f"{DAYS[3]},01"), ["line 5", "'01' is not a plain integer"]),
    "spaced id": (lambda: mutate(3, f"{DAYS[3]}, 1"), ["line 5", "' 1' is not a plain integer"]),
    "date before the calendar": (lambda: mutate(0, "1850-01-02,0"), ["line 2", "1850-01-02 is outside the exchange "
                                                                     "calendar"]),
    "date after the calendar": (lambda: mutate(3, "2300-01-03,1"), ["line 5", "2300-01-03 is outside the exchange "
                                                                    "calendar"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_file_fails_naming_the_problem(tmp_path, case):
    build, needles = CASES[case]
    header, rows = build()
    path = write(tmp_path, header, rows)
    with pytest.raises(LabelFileError) as err:
        read_user_labels(path)
    message = str(err.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message, f"{case}: {needle!r} not in {message}"


@pytest.mark.parametrize("content,needle", [
    (b"", "the file is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary file"),
    (b"<!DOCTYPE html><html><body>Sign in</body></html>", "HTML/XML page"),
    ("Date,regime\n2018-01-02,1\n".encode("utf-16"), "binary"),
])
def test_not_a_csv_at_all(tmp_path, content, needle):
    path = tmp_path / "regime_labels.csv"
    path.write_bytes(content)
    with pytest.raises(LabelFileError, match=needle):
        read_user_labels(path)


def test_no_overlap_with_price_history(tmp_path):
    header, rows = good_rows()
    with pytest.raises(LabelFileError, match="no label date overlaps the price history"):
        read_user_labels(write(tmp_path, header, rows), sessions=[dt.date(2019, 1, 2), dt.date(2019, 1, 3)])


def test_every_problem_is_reported_at_once(tmp_path):
    header, rows = good_rows()
    rows = list(rows)
    rows[1], rows[5] = f"{DAYS[1]},x", "2018-01-06,1"
    with pytest.raises(LabelFileError) as err:
        read_user_labels(write(tmp_path, header, rows))
    assert "line 3" in str(err.value) and "line 7" in str(err.value)


def test_with_a_label_lag_the_regime_known_at_t_needs_the_file_only_up_to_t_minus_lag(tmp_path):
    """REGIME_LABEL_LAG=3: the regime known after the close of t is the file's label 3 sessions earlier, so a file
    that ends at t − 3 is enough; one that ends at t − 4 is not."""
    import datetime as dt

    import polars as pl

    from regime_platform import calendar
    from regime_platform.labels import known_regime_at

    days = calendar.sessions(dt.date(2018, 11, 1), dt.date(2018, 12, 31))
    t = days[-1]
    frame = pl.DataFrame({"date": days})
    path = tmp_path / "regime_labels.csv"
    labelled = days[:-3]  # through t − 3
    path.write_text("Date,regime\n" + "".join(f"{d},{int(i >= len(labelled) - 1)}\n" for i, d in enumerate(labelled)))
    known = known_regime_at(frame, path, "jump", 3, t)
    assert known.regime == 1 and known.labels_version.startswith(f"user-{days[-4]}-")
    assert known_regime_at(frame, path, "jump", 0, t) is None  # with no lag it would need today's label
    path.write_text("Date,regime\n" + "".join(f"{d},{i % 2}\n" for i, d in enumerate(days[:-4])))
    assert known_regime_at(frame, path, "jump", 3, t) is None
