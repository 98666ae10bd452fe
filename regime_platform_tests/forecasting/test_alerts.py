"""The alert sensor against a webhook on 127.0.0.1 (a free port): exactly one message per change, retried when the
server fails, never posted twice, nothing at all when REGIME_ALERT_WEBHOOK is unset."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from regime_platform.defs.forecasting.alerts import regime_alert_sensor
from regime_platform.defs.resources import RegimeSettings
from regime_platform.forecasting import alerts


def change(session: str, old: str, new: str, p: float = 0.81) -> dict:
    return {"ticker": "SPY", "session": session, "previous_session": "2018-12-20", "old_regime": old, "new_regime": new,
            "probability": p, "model": "ensemble", "model_version": "ensemble-v", "target_date": "2018-12-31"}


@pytest.fixture
def webhook():
    """A local webhook: records each JSON body; answers 503 to the first ``fail`` requests."""
    state = {"received": [], "fail": 0, "attempts": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            state["attempts"] += 1
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state["fail"] > 0:
                state["fail"] -= 1
                self.send_response(503)
                self.end_headers()
                return
            state["received"].append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", state
    finally:
        server.shutdown()
        server.server_close()


def report(instance, changes: list[dict]) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key="regime_forecasts", metadata={"regime_changes": dg.MetadataValue.json(changes)}))


def tick(instance, url: str | None, cursor: str | None, **settings):
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"settings": RegimeSettings(alert_webhook=url, **settings)})
    result = regime_alert_sensor(context)
    return result, context.cursor


def test_exactly_one_message_per_change(webhook, monkeypatch):
    url, state = webhook
    monkeypatch.setattr(alerts.time, "sleep", lambda s: None)  # the backoff, without waiting
    with dg.instance_for_test() as instance:
        report(instance, [])  # a session without a change
        report(instance, [change("2018-12-21", "calm", "turbulent")])
        report(instance, [change("2018-12-21", "calm", "turbulent")])  # the same session re-run: the same change
        state["fail"] = 2  # the first two attempts get 503: retried with backoff
        result, cursor = tick(instance, url, None)
        assert state["attempts"] == 3 and len(state["received"]) == 1
        (message,) = state["received"]
        assert {k: message[k] for k in ("ticker", "session", "old_regime", "new_regime", "probability", "model")} == {
            "ticker": "SPY", "session": "2018-12-21", "old_regime": "calm", "new_regime": "turbulent",
            "probability": 0.81, "model": "ensemble"}
        assert message["link"] == "http://127.0.0.1:3000/assets/regime_forecasts?partition=2018-12-21"
        assert message["text"].startswith("SPY 2018-12-21: ensemble now forecasts turbulent for 2018-12-31 (p=0.81)")
        assert "posted 1 alert" in result.skip_message
        result, cursor = tick(instance, url, cursor)  # nothing new: nothing posted
        assert len(state["received"]) == 1
        report(instance, [change("2018-12-24", "turbulent", "calm", 0.6)])
        tick(instance, url, cursor, ui_url="https://dagster.example.org/")  # the link follows REGIME_UI_URL
        assert [m["new_regime"] for m in state["received"]] == ["turbulent", "calm"]
        assert state["received"][1]["link"] == "https://dagster.example.org/assets/regime_forecasts?partition=2018-12-24"


def test_a_webhook_that_keeps_failing_is_retried_next_tick_without_duplicates(webhook, monkeypatch):
    url, state = webhook
    waits = []
    monkeypatch.setattr(alerts.time, "sleep", waits.append)
    with dg.instance_for_test() as instance:
        report(instance, [change("2018-12-21", "calm", "turbulent")])
        state["fail"] = 4
        result, cursor = tick(instance, url, None)
        assert state["received"] == [] and waits == [1.0, 2.0, 4.0]
        assert "did not take the message after 4 tries (HTTP 503): it is retried on the next tick" in result.skip_message
        _, cursor = tick(instance, url, cursor)
        tick(instance, url, cursor)
        assert len(state["received"]) == 1


def test_silent_when_the_webhook_is_unset(webhook):
    url, state = webhook
    with dg.instance_for_test() as instance:
        report(instance, [change("2018-12-21", "calm", "turbulent")])
        result, _ = tick(instance, None, None)
        assert "REGIME_ALERT_WEBHOOK is unset" in result.skip_message and state["attempts"] == 0
