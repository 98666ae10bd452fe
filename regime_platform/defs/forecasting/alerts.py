"""The alert sensor: a JSON message to REGIME_ALERT_WEBHOOK for each change of the headline forecast's regime that
a `regime_forecasts` materialization reports (its `regime_changes` metadata, what the `regime_changed` check warns on).
Silent when the setting is unset; the URL is read at tick time (dg.EnvVar) and never shown in the UI."""

import dagster as dg

from regime_platform.defs.resources import RegimeSettings
from regime_platform.forecasting import alerts

LEDGER = dg.AssetKey("regime_forecasts")
ASSET_PAGE = "assets/regime_forecasts"  # the ledger's page under the UI's address (REGIME_UI_URL)
BATCH = 100


@dg.sensor(name="regime_alert_sensor", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Posts a JSON message (ticker, session, old → new regime, probability, model, link) to "
                       "REGIME_ALERT_WEBHOOK when the headline forecast's regime changes; retried with backoff, never "
                       "twice for the same change, silent when the setting is unset.")
def regime_alert_sensor(context: dg.SensorEvaluationContext, settings: RegimeSettings):
    s = settings.settings()
    url = s.alert_webhook
    if not url:
        return dg.SkipReason("REGIME_ALERT_WEBHOOK is unset: no alert is sent (set it to a webhook URL to get one).")
    cursor = alerts.Cursor.parse(context.cursor)
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=LEDGER, after_storage_id=cursor.after), limit=BATCH, ascending=True).records
    posted = 0
    for record in records:
        entry = record.asset_materialization.metadata.get("regime_changes") if record.asset_materialization else None
        for change in (entry.value if entry is not None else []):
            key = alerts.change_key(change)
            if key in cursor.sent:
                continue
            link = f"{s.ui_url.rstrip('/')}/{ASSET_PAGE}?partition={change['session']}"
            try:
                alerts.post(url, alerts.message(change, link))
            except alerts.AlertError as exc:
                context.update_cursor(cursor.dump())
                return dg.SkipReason(f"{change['ticker']} {change['session']}: {exc}")
            cursor.sent.append(key)
            posted += 1
            context.update_cursor(cursor.dump())
        cursor.after = record.storage_id
    context.update_cursor(cursor.dump())
    return dg.SkipReason(f"posted {posted} alert(s)" if posted else "no new change of the headline forecast")
