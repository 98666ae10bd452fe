"""Secrets (the Stooq key, the alert webhook's URL) reach the definitions as dg.EnvVar, resolved at launch: their
values are in neither the resources' config, nor their repr, nor the snapshot of the definitions the UI displays.
(A run with a fake key that greps the event log, the warehouse and the artifacts for it:
ingestion/test_source_faults.py.)"""
from __future__ import annotations

import dagster as dg

from regime_platform.defs.resources import RegimeSettings

KEY, HOOK = "S3CRET-stooq-key-0042", "https://hooks.example/T0KEN-0042"


def test_secret_values_are_nowhere_in_the_loaded_definitions(monkeypatch):
    # what the UI shows is the repository snapshot the code server sends it (a private API, so only read here)
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster_shared.serdes import serialize_value

    from regime_platform.definitions import defs

    monkeypatch.setenv("STOOQ_API_KEY", KEY)
    monkeypatch.setenv("REGIME_ALERT_WEBHOOK", HOOK)
    loaded = defs()
    settings = loaded.resources["settings"]
    assert isinstance(settings.stooq_api_key, dg.EnvVar) and settings.stooq_api_key.env_var_name == "STOOQ_API_KEY"
    assert isinstance(settings.alert_webhook, dg.EnvVar)
    shown = [repr(settings), settings.model_dump_json(), serialize_value(RepositorySnap.from_def(
        loaded.get_repository_def()))]
    for text in shown:
        assert KEY not in text and "T0KEN-0042" not in text
    assert "STOOQ_API_KEY" in shown[-1]  # the snapshot names the variable, not its value


def test_the_key_is_resolved_inside_a_run(monkeypatch):
    from regime_platform.definitions import defs

    monkeypatch.setenv("STOOQ_API_KEY", KEY)
    seen = {}

    @dg.asset
    def probe(settings: RegimeSettings):
        seen["key"] = settings.settings().stooq_api_key

    assert dg.materialize([probe], resources={"settings": defs().resources["settings"]}).success
    assert seen["key"] == KEY
