"""Settings are declared once: each is an environment variable and Dagster run config (or named load-time only),
and the README's settings table lists exactly them."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import dagster as dg
import pytest

from regime_platform.defs.resources import RegimeSettings
from regime_platform.features.compute import MODEL_FEATURES, model_feature_set
from regime_platform.modeling.training import TrainingConfig
from regime_platform.settings import Settings, SettingsError, setting_fields

# a value for each setting that differs from its default, as the environment writes it and as it is parsed
CHANGED = {
    "data_dir": ("/tmp/regime-elsewhere", Path("/tmp/regime-elsewhere")),
    "source": ("sample", "sample"), "tickers": ("qqq, spy", ("QQQ", "SPY")), "start": ("2001-01-02", dt.date(2001, 1, 2)),
    "horizon": ("21", 21), "window": ("60", 60), "labeler": ("HMM", "hmm"), "label_lag": ("21", 21),
    "settle_sessions": ("10", 10),
    "epochs": ("3", 3), "max_folds": ("2", 2), "class_weighting": ("0", False), "oversampling": ("random", "random"),
    "seed": ("7", 7), "min_dwell": ("5", 5), "inner_validation": ("0", False), "inner_score": ("Sharpe", "sharpe"),
    "risk_off_threshold": ("Tail", "tail"), "recency_half_life": ("Tail", "tail"), "persistence_anchor": ("0.9", "0.9"),
    "features": ("scale_free", "scale_free"), "feature_selection": ("1", True), "calibration": ("NONE", "none"),
    "headline_model": ("Logistic", "logistic"), "alert_webhook": ("http://127.0.0.1:9/hook", "http://127.0.0.1:9/hook"),
    "ui_url": ("http://10.0.0.5:3000", "http://10.0.0.5:3000"),
    "macro_series": ("vixcls, baa", ("VIXCLS", "BAA")), "macro_lag": ("2", 2), "macro": ("AUTO", "auto"),
    "stooq_api_key": ("k3y", "k3y"), "ohlcv_csv": ("/tmp/bars.csv", Path("/tmp/bars.csv")),
}


def test_every_setting_is_an_environment_variable():
    fields = setting_fields()
    assert {f.name for f in fields} == set(CHANGED)
    env = {f.metadata["env"]: CHANGED[f.name][0] for f in fields}
    settings = Settings.from_env(env)
    for f in fields:
        assert getattr(settings, f.name) == CHANGED[f.name][1], f.metadata["env"]
        assert getattr(settings, f.name) != f.default, f.name
    assert Settings.from_env({}) == Settings()


def test_every_setting_but_the_start_is_run_config():
    """Through a real run: run config reaches the asset's Settings, and the training configuration follows."""
    seen = {}

    @dg.asset
    def probe(settings: RegimeSettings):
        seen["settings"] = settings.settings()

    def as_config(value):
        return str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value

    run_config = {f.name: as_config(CHANGED[f.name][1]) for f in setting_fields() if not f.metadata["load_time_only"]}
    assert dg.materialize([probe], resources={"settings": RegimeSettings()},
                          run_config={"resources": {"settings": {"config": run_config}}}).success
    s = seen["settings"]
    for f in setting_fields():
        if f.metadata["load_time_only"]:
            assert f.name == "start"  # fixes the partitions when the definitions load: environment only
            continue
        assert getattr(s, f.name) == CHANGED[f.name][1], f.name
    config = TrainingConfig.from_settings(s)
    assert (config.horizon, config.window, config.epochs, config.max_folds) == (21, 60, 3, 2)
    assert (config.min_dwell, config.tune_capacity, config.inner_score) == (5, False, "sharpe")
    assert (config.calibration, config.feature_selection, model_feature_set(s.features)) == ("none", True, MODEL_FEATURES)
    assert config.reproducibility() == {"class_weighting": False, "oversampling": "random", "seed": 7}
    assert config.recency_half_life == "tail"


def test_readme_settings_table_lists_every_setting():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.M)
    assert sorted(listed) == sorted(f.metadata["env"] for f in setting_fields())


def test_tickers_are_a_comma_list_and_regime_ticker_the_one_ticker_spelling():
    assert Settings.from_env({"REGIME_TICKERS": " spy,QQQ , spy,"}).tickers == ("SPY", "QQQ")
    assert Settings.from_env({"REGIME_TICKER": "iwm"}).tickers == ("IWM",)
    assert Settings.from_env({"REGIME_TICKER": "spy", "REGIME_TICKERS": "SPY"}).tickers == ("SPY",)
    with pytest.raises(SettingsError, match=r"REGIME_TICKERS='SPY,QQQ' and REGIME_TICKER='IWM' disagree; set only "
                                            r"REGIME_TICKERS\."):
        Settings.from_env({"REGIME_TICKERS": "SPY,QQQ", "REGIME_TICKER": "IWM"})


def test_a_labels_file_that_does_not_name_its_ticker_is_refused_with_several_tickers(tmp_path):
    regimes = tmp_path / "regimes"
    regimes.mkdir()
    (regimes / "regime_labels.csv").write_text("Date,regime\n")
    assert Settings(data_dir=tmp_path).user_labels_path("SPY") == regimes / "regime_labels.csv"
    several = Settings(data_dir=tmp_path, tickers=("SPY", "QQQ"))
    with pytest.raises(SettingsError, match="does not say which ticker it labels.*rename it to regime_labels_<TICKER>"):
        several.user_labels_path("QQQ")
    (regimes / "regime_labels_QQQ.csv").write_text("Date,regime\n")
    assert several.user_labels_path("QQQ") == regimes / "regime_labels_QQQ.csv"


@pytest.mark.parametrize("env, needle", [
    ({"REGIME_HORIZON": "7"}, "REGIME_HORIZON=7 is not supported"),
    ({"REGIME_OVERSAMPLING": "adasyn"}, "REGIME_OVERSAMPLING='adasyn' is unknown"),
    ({"REGIME_CLASS_WEIGHTING": "maybe"}, "REGIME_CLASS_WEIGHTING='maybe' is not a yes/no value"),
    ({"REGIME_SEED": "x"}, "REGIME_SEED='x' is not an integer"),
    ({"REGIME_INNER_SCORE": "sortino"}, "REGIME_INNER_SCORE='sortino' is unknown"),
    ({"REGIME_RISK_OFF_THRESHOLD": "2"}, "REGIME_RISK_OFF_THRESHOLD='2' is neither `off`, `tail` nor a probability"),
    ({"REGIME_RECENCY_HALF_LIFE": "-5"}, "REGIME_RECENCY_HALF_LIFE='-5' is neither `off`, `tail` nor a positive number "
                                         "of sessions; use e.g. `tail` or 756."),
    ({"REGIME_RECENCY_HALF_LIFE": "756", "REGIME_OVERSAMPLING": "smote"},
     "REGIME_RECENCY_HALF_LIFE=756 needs REGIME_OVERSAMPLING=none or random"),
    ({"REGIME_MIN_DWELL": "-1"}, "REGIME_MIN_DWELL=-1 is negative"),
    ({"REGIME_START": "2001-13-01"}, "REGIME_START='2001-13-01' is not a date"),
    ({"REGIME_TICKERS": "SPY,QQ Q"}, "REGIME_TICKERS='SPY,QQ Q': 'QQ Q' is not a ticker symbol"),
    ({"REGIME_TICKERS": " , "}, "REGIME_TICKERS=',' names no ticker"),
    ({"REGIME_START": "1989-12-29"}, "REGIME_START=1989-12-29 is before 1990-01-02, the first session the trading "
                                     "calendar knows"),
    ({"REGIME_START": (dt.date.today() + dt.timedelta(days=1)).isoformat()}, "is in the future, so no session"),
    ({"REGIME_START": "2099-01-02"}, "REGIME_START=2099-01-02 is in the future"),
    ({"REGIME_SEED": "-1"}, "REGIME_SEED=-1 is out of range; use a whole number from 0 to 4294967295"),
    ({"REGIME_SEED": str(2**32)}, "REGIME_SEED=4294967296 is out of range"),
])
def test_a_bad_value_names_its_variable(env, needle):
    with pytest.raises(SettingsError, match=re.escape(needle)):
        Settings.from_env(env)


def test_a_secret_setting_reaches_the_resource_as_an_env_var_not_its_value(monkeypatch):
    """The webhook URL (and the Stooq key) may carry a token: the resource holds dg.EnvVar, resolved at launch/tick
    time, so the UI's resource config never displays it."""
    monkeypatch.setenv("REGIME_ALERT_WEBHOOK", "https://hooks.example/T0KEN")
    resource = RegimeSettings.from_env()
    assert isinstance(resource.alert_webhook, dg.EnvVar) and resource.alert_webhook.env_var_name == "REGIME_ALERT_WEBHOOK"
    assert "T0KEN" not in repr(resource.alert_webhook)
    seen = {}

    @dg.asset
    def probe(settings: RegimeSettings):
        seen["url"] = settings.settings().alert_webhook

    assert dg.materialize([probe], resources={"settings": resource}).success
    assert seen["url"] == "https://hooks.example/T0KEN"


def test_the_earliest_start_is_the_calendars_first_session():
    from regime_platform import calendar
    from regime_platform.settings import EARLIEST_START

    assert calendar.first_day() == EARLIEST_START
    assert Settings.from_env({"REGIME_START": EARLIEST_START.isoformat()}).start == EARLIEST_START
    assert Settings.from_env({"REGIME_START": dt.date.today().isoformat()}).start == dt.date.today()


@pytest.mark.parametrize("start, needle", [
    ("1985-06-03", "regime_platform.settings.SettingsError: REGIME_START=1985-06-03 is before 1990-01-02"),
    ("2090-01-03", "regime_platform.settings.SettingsError: REGIME_START=2090-01-03 is in the future"),
])
def test_a_start_out_of_range_fails_the_definitions_load_with_one_sentence(start, needle):
    """REGIME_START is read when the partitions are built (definitions load): before the check, a date outside the
    calendar raised IndexError there."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "REGIME_START": start}
    proc = subprocess.run([sys.executable, "-c", "import regime_platform.defs.partitions"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith(needle), proc.stderr[-800:]
    assert "IndexError" not in proc.stderr


def test_a_labels_path_that_is_a_directory_is_refused_in_one_sentence(tmp_path):
    (tmp_path / "regimes" / "regime_labels_SPY.csv").mkdir(parents=True)  # read as a file, it raised IsADirectoryError
    with pytest.raises(SettingsError, match=r"regime_labels_SPY\.csv is a directory, not a labels file: remove it"):
        Settings(data_dir=tmp_path).user_labels_path("SPY")
