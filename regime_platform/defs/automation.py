"""automation: the daily after-close run, the weekly retrain, freshness checks and their sensor (all ship stopped).

README "Daily operations" says how to start them; `dagster dev` (`make ui`) runs the daemon that ticks them.
"""
import datetime as dt

import dagster as dg

from regime_platform import calendar
from regime_platform.defs.partitions import session_partitions, ticker_partitions
from regime_platform.defs.resources import RegimeSettings
from regime_platform.defs.run_history import release_dead_runs
from regime_platform.ingestion.sources import SAMPLE_LAST

# One run per session, every ticker: the day's bars and macro values (the ledger's models with macro inputs read
# them; with REGIME_MACRO=off a failed macro fetch does not stop the run), their features, the ledger rows of every
# ticker's models (the regime known at t, which the persistence baseline needs, computed from data through t), and the scoreboard. The
# per-ticker assets (labels, models, evaluation) are not in it: they have ticker partitions, and refresh weekly.
daily_job = dg.define_asset_job(
    "daily_forecast_job",
    selection=dg.AssetSelection.assets("ohlcv", "macro", "features", "regime_forecasts", "forecast_scoreboard"),
    description="After the close of a session: ohlcv and macro → features → regime_forecasts → forecast_scoreboard "
                "for that session and every ticker of REGIME_TICKERS, in one run.",
)



# `regime-platform run`'s history, group by group: the daily assets over REGIME_START … today without their checks,
# then those checks once, for the last session. Dagster stores one asset_check_executions row per partition of a run
# for every check in it, each holding the run's whole partition subset (about 30 KB with the XNYS holidays): 4,779
# sessions × 5 checks were 715 MB of .dagster/ per full run. The checks read every stored row, so one evaluation
# covers the range; a backfill launched from the UI still evaluates them per partition (docs/scaling.md).
HISTORY_GROUPS = ("ingestion", "features")


def history_job_name(group: str, checks: bool) -> str:
    return f"history_{group}_{'checks' if checks else 'assets'}_job"


history_jobs = [
    dg.define_asset_job(
        history_job_name(group, checks),
        selection=(dg.AssetSelection.groups(group) - dg.AssetSelection.groups(group).without_checks()) if checks
        else dg.AssetSelection.groups(group).without_checks(),
        partitions_def=session_partitions,
        description=(f"The checks of the {group} assets, once (run for the last session): they read every stored row."
                     if checks else f"The {group} assets over a range of sessions without their checks "
                     f"(`regime-platform run` then runs {history_job_name(group, True)})."))
    for group in HISTORY_GROUPS for checks in (False, True)]


# Not build_schedule_from_partitioned_job: with the job's partitions inferred at resolution (the non-deprecated
# way), its holiday guard is lost and the Thanksgiving tick requests Friday's unclosed session (measured, 1.13.27).
# So the calendar decides: a weekday tick at 18:00 New York time requests that session, if it is one.
@dg.schedule(
    name="daily_forecast_schedule", job=daily_job, cron_schedule="0 18 * * 1-5",
    execution_timezone="America/New_York", default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Weekdays 18:00 America/New_York: that session's ohlcv and macro → features → forecasts → scoreboard. "
                "XNYS holidays and weekends produce no run.",
)
def daily_schedule(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.astimezone(calendar.NEW_YORK).date()
    if not calendar.is_session(day):
        return dg.SkipReason(f"{day} is not an XNYS session (holiday): nothing to forecast.")
    for sentence in release_dead_runs(context.instance):  # a killed run's pool slot would block today's run forever
        context.log.warning(sentence)
    # a session whose run failed (its retries spent) would never be asked for again: its run_key is used
    again = [dg.RunRequest(run_key=f"{s}-again-{day}", partition_key=s.isoformat(), tags={"regime/again_after": str(day)})
             for s in failed_sessions(context.instance, day)]
    return [dg.RunRequest(run_key=day.isoformat(), partition_key=day.isoformat()), *again]


AGAIN_SESSIONS = 5  # how many sessions back the daily schedule re-requests a session whose last run failed


def failed_sessions(instance: dg.DagsterInstance, day: dt.date) -> list[dt.date]:
    """The sessions among the AGAIN_SESSIONS before ``day`` whose latest run from the daily schedule failed."""
    recent = calendar.sessions(day - dt.timedelta(days=3 * AGAIN_SESSIONS), day)[:-1][-AGAIN_SESSIONS:]
    failed = []
    for session in recent:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/schedule_name": "daily_forecast_schedule",
                                                            "dagster/partition": session.isoformat()}), limit=1)
        if runs and runs[0].status == dg.DagsterRunStatus.FAILURE:
            failed.append(session)
    return failed


# One ticker per run: its labels, every model (walk-forward and production), evaluation and explainability.
retrain_job = dg.define_asset_job(
    "weekly_retrain_job",
    selection=dg.AssetSelection.assets("regime_labels").downstream() - dg.AssetSelection.groups("forecasting"),
    partitions_def=ticker_partitions,
    description="For one ticker (the partition): refit the labels, every model (walk-forward and production) and "
                "the evaluation and explainability below them.",
)


@dg.schedule(
    name="weekly_retrain_schedule", job=retrain_job, cron_schedule="0 6 * * 6",
    execution_timezone="America/New_York", default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Saturdays 06:00 America/New_York, after the week's last session: one retrain run per ticker of "
                "REGIME_TICKERS (a cluster executor runs them side by side).",
)
def weekly_retrain_schedule(context: dg.ScheduleEvaluationContext, settings: RegimeSettings):
    registered = set(context.instance.get_dynamic_partitions(ticker_partitions.name))
    week = context.scheduled_execution_time.date().isoformat()
    requests = [dg.RunRequest(run_key=f"{ticker}-{week}", partition_key=ticker)
                for ticker in settings.settings().tickers if ticker in registered]
    return requests or dg.SkipReason("no ticker of REGIME_TICKERS is registered yet: start the tickers_sensor or "
                                     "run `make run` once.")


@dg.sensor(
    name="tickers_sensor", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
    description="Keeps the ticker partitions in step with REGIME_TICKERS: adds each listed ticker that is not yet a "
                "partition (`regime-platform run` does the same before it materializes). Removing a ticker from the "
                "setting never deletes its partition or its rows.",
)
def tickers_sensor(context: dg.SensorEvaluationContext, settings: RegimeSettings):
    registered = set(context.instance.get_dynamic_partitions(ticker_partitions.name))
    new = [t for t in settings.settings().tickers if t not in registered]
    if not new:
        return dg.SkipReason("every ticker of REGIME_TICKERS is a partition")
    return dg.SensorResult(dynamic_partitions_requests=[ticker_partitions.build_add_request(new)])

FRESH_ASSETS = ["ohlcv", "regime_forecasts"]


def serving_the_sample(instance: dg.DagsterInstance) -> bool:
    """Whether the newest ohlcv materialization was served by the bundled offline sample (its `is_sample`)."""
    event = instance.get_latest_materialization_event(dg.AssetKey("ohlcv"))
    value = event.asset_materialization.metadata.get("is_sample") if event and event.asset_materialization else None
    return bool(value is not None and value.value)


def build_freshness_check(asset: str) -> dg.AssetChecksDefinition:
    # Dagster's build_time_partition_freshness_checks expects the partition current at the deadline; with
    # end_offset=1 on an XNYS holiday that is the next (unclosed) session, a false red. This one asks the calendar.
    @dg.asset_check(asset=asset, name="fresh_through_last_session", blocking=False,
                    description=f"ERROR when the newest session past its deadline ({calendar.DEADLINE:%H:%M} "
                                f"New York time) has no materialized {asset} partition. Holidays are never due, "
                                "nor is anything while ohlcv is served by the offline sample.")
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        due = calendar.due_session(dt.datetime.now(dt.timezone.utc))
        materialized = context.instance.get_materialized_partitions(dg.AssetKey(asset))
        passed, sentence = calendar.verdict(due, materialized, asset)
        not_due = not passed and serving_the_sample(context.instance)
        if not_due:  # offline: no session after the sample's end can be served, so none is overdue
            sentence = (f"not due: serving the offline sample, which ends {SAMPLE_LAST}, so session {due} cannot be "
                        f"materialized; go online (or set STOOQ_API_KEY) and {asset} is due every session again.")
        return dg.AssetCheckResult(passed=passed or not_due, description=sentence,
                                   severity=dg.AssetCheckSeverity.WARN if not_due else dg.AssetCheckSeverity.ERROR,
                                   metadata={"not_due": "serving the offline sample" if not_due else "no","due_session": str(due), "newest_materialized": max(materialized, default="none"),
                                             "deadline": calendar.deadline(due).isoformat()})

    return _check


freshness_checks = [build_freshness_check(asset) for asset in FRESH_ASSETS]


@dg.sensor(
    name="freshness_sensor", minimum_interval_seconds=900, default_status=dg.DefaultSensorStatus.STOPPED,
    asset_selection=dg.AssetSelection.checks(*freshness_checks),
    description="Once a session's deadline passes, evaluates the freshness checks of ohlcv and regime_forecasts "
                "(they also run with every materialization of those assets), so a missed session shows red.",
)
def freshness_sensor(context: dg.SensorEvaluationContext):
    due = calendar.due_session(dt.datetime.now(dt.timezone.utc))
    return dg.RunRequest(run_key=f"freshness-{due}", asset_check_keys=[
        key for check in freshness_checks for key in check.check_keys])
