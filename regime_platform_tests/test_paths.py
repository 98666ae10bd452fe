"""Paths built from settings and names never leave REGIME_DATA_DIR: a ticker (from REGIME_TICKERS, run config or a
ticker partition added by hand) that would lead outside is refused in one sentence before any work, and nothing is
written outside the data dir; a user's own input file kept elsewhere (REGIME_OHLCV_CSV, a labels file linked into
data/regimes) is still read."""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from regime_platform.defs.labels.assets import regime_labels
from regime_platform.defs.modeling.assets import model_assets, walk_forward_targets
from regime_platform.defs.resources import ArtifactIOManager, RegimeSettings, artifact_directory
from regime_platform.labels.user_file import file_fingerprint
from regime_platform.settings import Settings, SettingsError
from regime_platform_tests.conftest import materialize_ticker, platform_resources

ROOT = Path(__file__).parents[1]
ESCAPES = ["../../etc", "SPY/../../x", "..", "../../../../tmp/regime-escape"]


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (what a run must not add to outside its data dir)."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("ticker", ESCAPES)
def test_a_ticker_leading_outside_the_data_dir_is_refused_by_the_settings(ticker):
    with pytest.raises(SettingsError, match=re.escape(f"REGIME_TICKERS={ticker!r}: {ticker!r} is not a ticker symbol; "
                                                      "use letters, digits")):
        Settings.from_env({"REGIME_TICKERS": ticker})
    with pytest.raises(SettingsError, match=re.escape(f"resources.settings.config.tickers={ticker!r}: {ticker!r} is "
                                                      "not a ticker symbol")):  # the run config's spelling
        RegimeSettings(tickers=[ticker]).settings()
    with pytest.raises(SettingsError, match=re.escape(f"REGIME_TICKERS: {ticker.upper()!r} is not a ticker symbol")):
        Settings(tickers=(ticker.upper(),)).validate()  # a Settings built directly is validated the same way


@pytest.mark.parametrize("ticker", ["../../etc", "SPY/../../x"])
def test_run_stops_on_such_a_ticker_before_any_work_and_writes_nothing(tmp_path, ticker):
    """Through the real command in a subprocess: one sentence, exit status 1, and no file anywhere under tmp_path
    (the data dir, the Dagster home and the directories the ticker points to)."""
    work, data = tmp_path / "work" / "a" / "b", tmp_path / "work" / "a" / "b" / "data"
    work.mkdir(parents=True)
    before = tree(tmp_path)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "REGIME_DATA_DIR": str(data),
           "REGIME_SOURCE": "sample", "REGIME_TICKERS": ticker}
    cmd = [str(Path(sys.executable).parent / "regime-platform"), "run"]
    out = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    assert out.stderr.strip() == (f"REGIME_TICKERS={ticker!r}: {ticker!r} is not a ticker symbol; use letters, "
                                  "digits, '.', '-', '^' or '=' (e.g. SPY,QQQ,BRK-B).")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("key", ["../../../../escaped", "SPY/../../../../escaped"])
def test_a_ticker_partition_added_by_hand_that_leads_outside_is_refused_before_any_work(tmp_path, key):
    """The UI's partition dialog takes any text as a ticker partition; the per-ticker assets name folders after it.
    Each refuses it in one sentence before reading or writing anything; nothing appears outside the data dir."""
    data = tmp_path / "deep" / "data"
    data.mkdir(parents=True)
    resources = platform_resources(data, epochs=1, max_folds=1, inner_validation=False)
    before = tree(tmp_path)
    sentence = (f"SettingsError: the ticker partition {key!r} is not a ticker symbol, and its files would be written "
                "under that name (outside REGIME_DATA_DIR with '/' or '..'): delete the partition and add tickers "
                "through REGIME_TICKERS (e.g. SPY,BRK-B).")
    lstm = next(a for a in model_assets if a.key.to_user_string() == "lstm_model")
    for asset in (regime_labels, walk_forward_targets, lstm):
        result = materialize_ticker([asset], resources, ticker=key, raise_on_error=False)
        assert not result.success
        failure = result.get_step_failure_events()[0].event_specific_data.error.cause.message
        assert failure.strip() == f"regime_platform.settings.{sentence}", failure
    assert tree(tmp_path) == before  # not even the warehouse was opened
    # and the two places that turn a partition into a folder refuse it themselves
    with pytest.raises(SettingsError, match=re.escape(f"the ticker partition {key!r} is not a ticker symbol")):
        ArtifactIOManager(base_dir=str(data / "artifacts")).directory(dg.AssetKey("lstm_model"), key)
    with pytest.raises(SettingsError, match=re.escape(f"the ticker partition {key!r} is not a ticker symbol")):
        artifact_directory(resources["settings"], "backtest", key)


def test_an_asset_name_leading_outside_is_refused_too(tmp_path):
    """Asset names come from the code, but the folder join checks the result all the same."""
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.artifact_dir("backtest", "BRK-B") == tmp_path / "data" / "artifacts" / "backtest" / "BRK-B"
    with pytest.raises(SettingsError, match=re.escape(f"{tmp_path / 'data' / 'artifacts' / '..' / '..' / 'x'} lies "
                                                      f"outside {tmp_path / 'data' / 'artifacts'}, and the platform "
                                                      "writes only inside REGIME_DATA_DIR")):
        settings.artifact_dir("../../x")


def test_your_own_input_files_may_live_outside_the_data_dir(tmp_path):
    """Reading is not writing: REGIME_OHLCV_CSV anywhere, and a labels file linked into data/regimes from elsewhere."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bars, labels = elsewhere / "bars.csv", elsewhere / "my_labels.csv"
    bars.write_text("Date,Open,High,Low,Close,Volume\n")
    labels.write_text("Date,regime\n2018-01-02,0\n")
    settings = Settings.from_env({"REGIME_DATA_DIR": str(tmp_path / "data"), "REGIME_SOURCE": "csv",
                                  "REGIME_OHLCV_CSV": str(bars)})
    assert settings.ohlcv_csv == bars
    (tmp_path / "data" / "regimes").mkdir(parents=True)
    link = tmp_path / "data" / "regimes" / "regime_labels_SPY.csv"
    link.symlink_to(labels)
    assert settings.user_labels_path("SPY") == link
    assert file_fingerprint(link) == hashlib.sha256(labels.read_bytes()).hexdigest()


def test_run_config_keeps_the_data_dir_and_refuses_another_before_any_work(tmp_path, monkeypatch):
    """The warehouse and the artifact IO manager open REGIME_DATA_DIR when the definitions load. Run config of the
    settings resource replaced every value bound from the environment: a launchpad `{horizon: 21}` sent data_dir back
    to ./data (the run's working directory), where fold records and figures went while the rows stayed in
    REGIME_DATA_DIR. Now the environment's values stay the defaults, and a data_dir elsewhere is refused."""
    from regime_platform.defs.resources import default_resources

    data, elsewhere, cwd = tmp_path / "data", tmp_path / "elsewhere", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("REGIME_DATA_DIR", str(data))
    monkeypatch.setenv("REGIME_SOURCE", "sample")
    monkeypatch.setenv("REGIME_TICKERS", "QQQ")
    resources = default_resources()
    seen = {}

    @dg.asset
    def probe(settings: RegimeSettings):
        s = settings.settings()
        seen.update(data_dir=s.data_dir, source=s.source, tickers=s.tickers, horizon=s.horizon,
                    folds=artifact_directory(settings, "lstm_model", "QQQ"))

    horizon = {"resources": {"settings": {"config": {"horizon": 21}}}}
    assert dg.materialize([probe], resources={"settings": resources["settings"]}, run_config=horizon).success
    assert seen == {"data_dir": data, "source": "sample", "tickers": ("QQQ",), "horizon": 21,
                    "folds": data / "artifacts" / "lstm_model" / "QQQ"}
    before = tree(tmp_path)
    moved = {"resources": {"settings": {"config": {"data_dir": str(elsewhere)}}}}
    result = materialize_ticker([walk_forward_targets], resources, ticker="QQQ", raise_on_error=False, run_config=moved)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.cause.message
    assert failure.strip() == (f"regime_platform.settings.SettingsError: resources.settings.config.data_dir={elsewhere} "
                               f"is not REGIME_DATA_DIR={data}, where the definitions opened the warehouse and the "
                               f"artifacts: set REGIME_DATA_DIR={elsewhere} and reload the definitions instead.")
    assert tree(tmp_path) == before and not elsewhere.exists()
