"""Alerts on a change of the headline forecast: the JSON message and its delivery to a webhook, retried with backoff.

Plain Python (no Dagster): the alert sensor (defs/forecasting/alerts.py) finds the changes in the ledger's
materializations, remembers what it sent in its cursor (so a change is never posted twice), and calls :func:`post`.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
SENT_KEPT = 500  # the change keys the cursor remembers (far more than a ledger produces between two ticks)


class AlertError(RuntimeError):
    """A message could not be delivered; the sentence says why and what happens next."""


def change_key(change: Mapping[str, Any]) -> str:
    """One change, whichever run reported it: a re-run of the same session reports the same key."""
    return f"{change['ticker']}|{change['session']}|{change['model']}|{change['old_regime']}>{change['new_regime']}"


def message(change: Mapping[str, Any], link: str) -> dict[str, Any]:
    """The JSON posted for one change: a sentence for chat tools (`text`) and every field for scripts."""
    text = (f"{change['ticker']} {change['session']}: {change['model']} now forecasts {change['new_regime']} for "
            f"{change['target_date']} (p={change['probability']:.2f}), was {change['old_regime']} on "
            f"{change['previous_session']}.")
    return {"text": text, "ticker": change["ticker"], "session": change["session"],
            "old_regime": change["old_regime"], "new_regime": change["new_regime"],
            "probability": change["probability"], "model": change["model"],
            "model_version": change.get("model_version"), "target_date": change["target_date"], "link": link}


def post(url: str, payload: Mapping[str, Any], attempts: int = 4, backoff: float = 1.0, timeout: float = 10.0,
         sleep: Callable[[float], None] | None = None) -> int:
    """POST ``payload`` as JSON; on a network error or a retryable status wait ``backoff``, then twice as long, …
    up to ``attempts`` tries. Returns the HTTP status; raises AlertError with one sentence otherwise."""
    body = json.dumps(payload).encode()
    last = ""
    for attempt in range(attempts):
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "regime-platform"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            if exc.code not in RETRY_STATUSES:
                raise AlertError(f"the webhook answered HTTP {exc.code}: check REGIME_ALERT_WEBHOOK (the message "
                                 "is retried on the next tick).") from None
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            last = str(getattr(exc, "reason", exc))
        if attempt + 1 < attempts:
            (sleep or time.sleep)(backoff * 2 ** attempt)
    raise AlertError(f"the webhook did not take the message after {attempts} tries ({last}): it is retried on the "
                     "next tick.")


@dataclass
class Cursor:
    """The sensor's cursor: the newest ledger materialization read, and the changes already posted."""

    after: int | None = None
    sent: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: str | None) -> "Cursor":
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(data.get("after"), list(data.get("sent", [])))

    def dump(self) -> str:
        return json.dumps({"after": self.after, "sent": self.sent[-SENT_KEPT:]})
