"""`.env` is read by `regime-platform` exactly as the dagster commands read it: one configuration per run."""
from __future__ import annotations

import os

import pytest

from regime_platform import cli, env_file

TRICKY = """# a comment
export STOOQ_API_KEY=k3y-from-dotenv
REGIME_TICKERS="QQQ, SPY"   # quoted, with a trailing comment
REGIME_DATA_DIR='{data}'
REGIME_SOURCE=csv
REGIME_OHLCV_CSV={csv}
REGIME_EMPTY=
REGIME_NO_VALUE
"""


def write_env(directory, **paths) -> None:
    (directory / ".env").write_text(TRICKY.format(**paths))


def test_the_same_variables_as_dagsters_own_loader(tmp_path):
    # the function Dagster's CLI calls (dagster._cli.utils._inject_local_env_file); private, so only compared here
    from dagster._core.secrets.env_file import get_env_var_dict

    write_env(tmp_path, data=tmp_path / "data", csv=tmp_path / "bars.csv")
    ours = env_file.read(tmp_path)
    assert ours == get_env_var_dict(str(tmp_path))
    assert ours["STOOQ_API_KEY"] == "k3y-from-dotenv" and ours["REGIME_TICKERS"] == "QQQ, SPY"
    assert ours["REGIME_EMPTY"] == "" and "REGIME_NO_VALUE" not in ours
    assert env_file.read(tmp_path / "nowhere") == {}


def test_the_planner_reads_key_data_dir_and_tickers_set_only_in_dotenv(tmp_path, monkeypatch):
    """The shell says REGIME_SOURCE=bogus; `.env` says csv with a file that is missing, tickers QQQ and SPY, its own
    data dir and a Stooq key. `.env` wins, as it does in the `dagster asset materialize` subprocess: the planner
    fails on the missing file of the `.env` (not on the shell's bogus source), names both tickers, and the key is
    what the runs it would start inherit."""
    data, csv = tmp_path / "data", tmp_path / "bars.csv"
    write_env(tmp_path, data=data, csv=csv)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REGIME_SOURCE", "bogus")
    for name in ("STOOQ_API_KEY", "REGIME_TICKERS", "REGIME_TICKER", "REGIME_DATA_DIR", "REGIME_OHLCV_CSV",
                 "REGIME_EMPTY"):
        monkeypatch.setenv(name, "")  # unset (blank = the default), and restored after what main() sets
    with pytest.raises(SystemExit) as stopped:
        cli.main(["run"])
    said = str(stopped.value)
    assert said.startswith("no data source is available: ") and f"REGIME_OHLCV_CSV={csv} does not exist" in said
    assert "QQQ" in said and "SPY" in said and "bogus" not in said
    assert os.environ["STOOQ_API_KEY"] == "k3y-from-dotenv"  # what the materialization subprocess inherits
    assert os.environ["REGIME_DATA_DIR"] == str(data)
    assert not data.exists()  # a bad input stores nothing


def test_the_readers_use_the_data_dir_of_dotenv(tmp_path, monkeypatch, capsys):
    data = tmp_path / "elsewhere"
    (tmp_path / ".env").write_text(f"REGIME_DATA_DIR={data}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REGIME_DATA_DIR", str(tmp_path / "shell"))
    with pytest.raises(SystemExit) as stopped:
        cli.main(["forecast", "--json", "--wait", "0"])
    assert str(data / "warehouse.duckdb") in str(stopped.value)


def test_a_data_dir_that_cannot_be_written_stops_run_before_any_work(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REGIME_SOURCE", "sample")
    monkeypatch.setenv("REGIME_DATA_DIR", str(blocker / "data"))
    with pytest.raises(SystemExit) as stopped:
        cli.main(["run"])
    assert str(stopped.value) == (f"REGIME_DATA_DIR={blocker / 'data'} cannot be written ({blocker} is not a "
                                  "directory); set REGIME_DATA_DIR to a directory you can write.")
    assert not (tmp_path / "home").exists()
