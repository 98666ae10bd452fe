"""`regime-platform run | forecast | status | evaluation | export`: run the platform, read the ledger and the results.

`run` materializes every asset end to end in the Dagster instance that `make ui` shows. It first asks the source
chain which sessions it can serve, then materializes REGIME_START … the last closed session served: for each daily
group (ingestion, then features) one single-run backfill of its assets and one run of their checks, once; then one
run per ticker of the per-ticker assets, then the forecast ledger for the last closed session only (a model fit
today on all history would be in-sample for earlier dates). Sessions no source can serve are reported, never
fetched. `forecast` and `status` only read the warehouse (and the Dagster instance), as tables or `--json`.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from regime_platform import calendar, env_file
from regime_platform import storage as warehouse
from regime_platform.features.compute import model_feature_set
from regime_platform.forecasting import headline, ledger
from regime_platform.ingestion.sources import SAMPLE_LAST, SourceError, build_chain, is_sample, sample_stand_in
from regime_platform.labels.names import names_by_id
from regime_platform.modeling.targets_version import scope_for
from regime_platform.runs import IN_PROCESS, execute_job, materialize, run_config
from regime_platform.settings import Settings, SettingsError

# The runs (run_steps), in order: the daily-partitioned assets over REGIME_START … the last closed session served
# (single-run backfills holding every ticker, their checks run once after), then one run per ticker of every
# per-ticker asset (its partition), then the ledger for the last closed session only and the scoreboard.
PER_TICKER = "group:labels or group:modeling or group:evaluation or group:explainability"
LEDGER, SCOREBOARD = "regime_forecasts", "forecast_scoreboard"


def say(message: str) -> None:
    print(f"[regime-platform] {message}", flush=True)


def elapsed(began: float) -> str:
    minutes, seconds = divmod(int(time.monotonic() - began), 60)
    return f"{minutes} min {seconds:02d} s"


@dataclass
class Plan:
    """What `run` materializes: the session range, the serving source of each ticker, the tickers to (re)build
    (a ticker already stored through the range is left as it is when another is added), and the tickers no
    source serves, each with its sentence."""

    first: dt.date
    last: dt.date
    sources: dict[str, str]
    build: list[str]
    failed: dict[str, str] = field(default_factory=dict)
    warned: list[str] = field(default_factory=list)  # the sources' failures said while planning: not said again

    @property
    def tickers(self) -> list[str]:
        return list(self.sources)


def stored_spans(settings: Settings) -> dict[str, tuple[dt.date, dt.date]]:
    """ticker → (first, last) stored session, read without holding the file open."""
    if not settings.warehouse_path.exists():
        return {}
    with warehouse.read_only(settings.warehouse_path, wait=0) as con:
        return warehouse.ohlcv_spans(con)


def plan_range(settings: Settings) -> Plan:
    chain = build_chain(settings.source, stooq_api_key=settings.stooq_api_key, ohlcv_csv=settings.ohlcv_csv)
    served, failed, warned = {}, {}, []
    for ticker, answer in chain.last_sessions(settings.tickers).items():  # one request per source for the list
        if isinstance(answer, SourceError):
            failed[ticker] = str(answer)
            continue
        source, last_served, warnings = answer
        for warning in warnings:
            say(f"warning ({ticker}): {warning}")
            warned.append(warning)
        served[ticker] = (source, last_served)
    for sentence in failed.values():
        say(f"not served, left out: {sentence}")
    if not served:
        raise SystemExit("no data source is available: " + " ".join(failed.values()))
    first = calendar.sessions(settings.start, settings.start + dt.timedelta(days=10))[0]
    newest_key = calendar.sessions(dt.date.today(), dt.date.today() + dt.timedelta(days=7))[0]
    last_served = min(day for _, day in served.values())
    last = min(last_served, calendar.last_closed_session())
    sources = {t: source for t, (source, _) in served.items()}
    if last < first:
        raise SystemExit(f"{', '.join(sorted(set(sources.values())))} serves sessions up to {last_served}, before "
                         f"REGIME_START={settings.start}; choose an earlier REGIME_START or another REGIME_SOURCE.")
    if len({day for _, day in served.values()}) > 1:
        say("the tickers' sources end on different sessions: every ticker is planned up to the earliest, "
            f"{last} ({', '.join(f'{t} {day}' for t, (_, day) in served.items())}).")
    skipped = calendar.sessions(calendar.next_session(last), newest_key)
    if skipped:
        reason = (f"past the end of the bundled sample ({SAMPLE_LAST})" if any(map(is_sample, sources.values()))
                  else "not yet closed or not yet served by every ticker's source")
        say(f"{len(skipped)} partitions {skipped[0]} … {skipped[-1]} are {reason}: not fetched, left unmaterialized.")
    stored = stored_spans(settings)
    ahead = {t: span[1] for t, span in stored.items() if t in sources and span[1] > last}
    if ahead:
        ticker, day = next(iter(ahead.items()))
        raise SystemExit(
            f"{sources[ticker]} serves {ticker} only up to {last}, but {settings.warehouse_path} already holds {day}: "
            "refusing to overwrite live history with a shorter source — go online, or use a fresh REGIME_DATA_DIR."
        )
    complete = [t for t in sources if stored.get(t) == (first, last)]
    build = [t for t in sources if t not in complete] or list(sources)
    if complete and build != list(sources):
        say(f"{', '.join(complete)} already stored {first} … {last}: left as they are; building {', '.join(build)}.")
    for ticker, source in sources.items():
        if is_sample(source):
            say(f"OFFLINE: serving the bundled sample — {sample_stand_in(ticker)}; {first} … {last} "
                f"planned; rows say source={source}.")
    return Plan(first, last, sources, build, failed, warned)


def register_tickers(tickers: list[str]) -> None:
    """Add each ticker as a partition of the per-ticker assets in the Dagster instance `make ui` shows."""
    import dagster as dg

    from regime_platform.defs.partitions import ticker_partitions

    with dg.DagsterInstance.get() as instance:
        known = set(instance.get_dynamic_partitions(ticker_partitions.name))
        new = [t for t in tickers if t not in known]
        if new:
            instance.add_dynamic_partitions(ticker_partitions.name, new)
            say(f"registered ticker partition(s) {', '.join(new)}")


@dataclass(frozen=True)
class Step:
    """One Dagster run of `regime-platform run`: an asset selection, or (``job``) a job of the definitions."""
    label: str
    target: str
    partitions: tuple[str, str] | None
    config: str = IN_PROCESS
    job: bool = False

    def run(self, said: list[str]) -> None:
        if self.job:
            execute_job(self.target, self.partitions, self.config, said=said)
        else:
            materialize(self.target, self.partitions, self.config, said=said)


def run_steps(plan: Plan) -> list[Step]:
    """Every run, in order: the history of each daily group without its checks, then those checks once (the
    definitions' history jobs: per-partition check rows would fill .dagster/), then per ticker, ledger, scoreboard."""
    from regime_platform.defs.automation import history_job_name

    some = plan.build if plan.build != plan.tickers else None  # None = every ticker (the default config)
    day, tickers = plan.last.isoformat(), ", ".join(plan.build)
    span = (plan.first.isoformat(), day)
    return [
        Step(f"ohlcv and macro of {tickers}, {plan.first} … {plan.last}", history_job_name("ingestion", False), span,
             run_config(some, ("ohlcv",)), job=True),
        Step("the checks of ohlcv and macro, once over every stored row", history_job_name("ingestion", True),
             (day, day), job=True),
        Step(f"features of {tickers}, {plan.first} … {plan.last}", history_job_name("features", False), span,
             run_config(some, ("features",)), job=True),
        Step("the checks of features, once over every stored row", history_job_name("features", True), (day, day),
             job=True),
        *(Step(f"{ticker}: labels, models, evaluation, explainability", PER_TICKER, (ticker, ticker))
          for ticker in plan.build),
        Step(f"forecast ledger of {tickers}: the last closed session only", LEDGER, (day, day),
             run_config(some, ("regime_forecasts",))),
        Step("forecast scoreboard", SCOREBOARD, None),
    ]


def run(_args: argparse.Namespace) -> int:
    if not os.environ.get("DAGSTER_HOME"):
        raise SystemExit("DAGSTER_HOME is not set: run `make run` (it sets DAGSTER_HOME=./.dagster) so the runs "
                         "appear in `make ui`.")
    try:
        settings = Settings.from_env()
        model_feature_set(settings.features)  # a bad REGIME_FEATURES stops here, before any download
    except SettingsError as exc:
        raise SystemExit(str(exc)) from exc
    problem = warehouse.unwritable(settings.data_dir)
    if problem:  # before any download: the run could store nothing
        raise SystemExit(f"REGIME_DATA_DIR={settings.data_dir} cannot be written ({problem}); set REGIME_DATA_DIR to "
                         "a directory you can write.")
    from regime_platform.defs.run_history import release_dead_runs

    for sentence in release_dead_runs():  # else a run killed earlier holds the duckdb pool and this one waits forever
        say(sentence)
    plan = plan_range(settings)
    say(f"materializing {', '.join(plan.build)} {plan.first} … {plan.last} "
        f"({len(calendar.sessions(plan.first, plan.last))} sessions) from "
        f"{', '.join(f'{t} {s}' for t, s in plan.sources.items())}")
    register_tickers(plan.tickers)
    steps = run_steps(plan)
    began = time.monotonic()
    for k, step in enumerate(steps, 1):
        say(f"step {k}/{len(steps)}: {step.label} ({elapsed(began)} so far)")
        if step.target == LEDGER:
            say(f"forecast ledger: {plan.last} only; earlier sessions would be forecast by a model fit after them "
                "(in-sample), so the ledger starts today and grows one session a day.")
        step.run(plan.warned)
    say(f"done: {', '.join(plan.build)} {plan.first} … {plan.last} from "
        f"{', '.join(sorted(set(plan.sources.values())))} in {elapsed(began)}. Open the UI with `make ui` to inspect it.")
    if plan.failed:
        say("not served: " + " ".join(plan.failed.values()))
    with warehouse.read_only(settings.warehouse_path, LOCK_WAIT_SECONDS) as con:  # the last word: today's answer, one line per ticker
        heads, problems = answers(settings, con)
    for sentence in [h.line() for h in heads] + problems:
        say(f"today: {sentence}")
    return 0


# ---- forecast / status: read-only views for people who live in a terminal ----------------------------------

LOCK_WAIT_SECONDS = 10.0


def text_table(rows: list[dict], columns: list[str] | None = None, digits: int = 3) -> str:
    if not rows:
        return "(none)"
    columns = columns or list(rows[0])

    def cell(v) -> str:
        if v is None:
            return "-"
        if isinstance(v, list):
            return "[" + ", ".join(cell(x) for x in v) + "]"
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def settings_or_exit() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(str(exc)) from exc


def answers(settings: Settings, con) -> tuple[list[headline.Headline], list[str]]:
    """Today's one-line answer of every ticker the ledger holds, and a sentence for each it cannot answer."""
    heads, problems = [], []
    for ticker in warehouse.ledger_tickers(con):
        try:
            heads.append(headline.today(ticker, warehouse.headline_inputs(con, ticker), settings.headline_model,
                                        settings.horizon))
        except headline.HeadlineError as exc:
            problems.append(str(exc))
    return heads, problems


FORMATS = ("table", "csv", "json")
TABLE_COLUMNS = ["ticker", "model", "as_of", "target_date", "regime", "probability", "probabilities", "known_regime",
                 "model_version", "status"]
CSV_COLUMNS = ["ticker", "model", "baseline", "as_of", "horizon", "target_date", "regime", "probability",
               "probabilities", "known_regime", "model_version", "price_source", "status", "realized_regime"]


def forecast(args: argparse.Namespace) -> int:
    import csv

    settings = settings_or_exit()
    fmt = "json" if args.json else args.format
    with warehouse.read_only(settings.warehouse_path, args.wait) as con:
        stored = warehouse.read_ledger(con)
        tickers = sorted(set(stored["ticker"].to_list()))
        names = {t: names_by_id(warehouse.stored_regime_names(con, t)) for t in tickers}
        heads, problems = answers(settings, con)
    rows = ledger.jsonable(headline.history_table(stored, names, args.history, settings.headline_model))
    if fmt == "json":
        print(json.dumps({"headline": [h.as_dict() for h in heads], "not_answered": problems, "forecasts": rows},
                         indent=2))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row | {"probabilities": json.dumps(row["probabilities"])})
    elif not rows:
        print("the ledger is empty: materialize regime_forecasts for the last closed session (`make run` does).")
    else:
        print("\n".join([h.line() for h in heads] + problems) + "\n")
        shown = [r | {"model": r["model"] + (" (baseline)" if r["baseline"] else "")} for r in rows]
        print(text_table(shown, TABLE_COLUMNS, digits=2))
    return 0


def export(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    with warehouse.read_only(settings.warehouse_path, args.wait) as con:
        written = warehouse.export_tables(con, Path(args.directory))
    if not written:
        print("the warehouse holds neither a ledger nor out-of-sample rows yet: run `make run` first.")
        return 1
    for path, rows in written:
        print(f"{path}  ({rows} rows)")
    return 0


def status(args: argparse.Namespace) -> int:
    settings = settings_or_exit()

    with warehouse.read_only(settings.warehouse_path, args.wait) as con:
        fresh = {t: warehouse.freshest_dates(con, t) for t in settings.tickers}
        stored = warehouse.read_ledger(con)
        versions = {t: scope_for(settings, t).targets_version for t in sorted(set(stored["ticker"].to_list()))}
        board = ledger.scoreboard(stored, warehouse.read_oos_pooled(con, versions))
    # Dagster is imported only here: `forecast` and the planner of `run` never need it (about 3 s of start-up)
    from regime_platform.defs.run_history import instance_view

    view = instance_view()
    tables = [{"ticker": ticker, "table": f"market.{t}", "newest_date": d.isoformat() if d else None}
              for ticker, dates in fresh.items() for t, d in dates.items()]
    scoreboard = ledger.jsonable(board.drop("first_as_of", "last_as_of"))
    if args.json:
        print(json.dumps({"warehouse": str(settings.warehouse_path), "tables": tables, **view,
                          "scoreboard": scoreboard}, indent=2))
        return 0
    print(f"warehouse {settings.warehouse_path}\n\n{text_table(tables)}\n")
    if view.get("note"):
        print(view["note"] + "\n")
    else:
        print("assets (Dagster instance)\n" + text_table(view["assets"]) + "\n")
        print("failing checks\n" + text_table(view["failing_checks"]) + "\n")
    print("scoreboard (live ledger vs walk-forward)\n" + text_table(
        scoreboard, ["ticker", "model", "horizon", "scored", "pending", "live_hit_rate", "live_macro_f1",
                     "live_brier", "wf_hit_rate", "wf_macro_f1", "wf_brier"]))
    return 0


def evaluation(args: argparse.Namespace) -> int:
    """Per ticker, at the configured horizon: every strategy with its 90 % intervals, and the verdict."""
    from regime_platform.evaluation import report

    settings = settings_or_exit()
    with warehouse.read_only(settings.warehouse_path, args.wait) as con:
        blocks = [report.ticker_evaluation(ticker, version, settings.horizon,
                                           warehouse.stored_backtest(con, ticker, version),
                                           warehouse.stored_model_metrics(con, ticker, version, pooled_only=True),
                                           warehouse.stored_baseline_comparison(con, ticker, version))
                  for ticker in settings.tickers for version in [scope_for(settings, ticker).targets_version]]
    if args.json:
        print(json.dumps(blocks, indent=2, default=str))
        return 0
    for block in blocks:
        print(f"{block['ticker']} ({block['targets_version']}): {report.METHOD}")
        print(text_table(report.strategy_rows(block)) + "\n")
        print("\n".join(block["verdict"]) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="regime-platform", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="materialize every asset end to end (what `make run` calls)").set_defaults(func=run)
    for name, func, text in (("forecast", forecast, "today's regime in one line per ticker, then every model's "
                                                    "forecast, from the ledger"),
                             ("status", status, "freshest partitions, failing checks and the live scoreboard"),
                             ("evaluation", evaluation, "every strategy with its 90 % intervals and the verdict "
                                                        "against the baselines"),
                             ("export", export, "write the ledger and the out-of-sample rows to DIR as Parquet and "
                                                "CSV")):
        p = sub.add_parser(name, help=text)
        if name == "export":
            p.add_argument("directory", metavar="DIR", help="where to write the files (created if missing)")
        else:
            p.add_argument("--json", action="store_true", help="machine-readable output"
                           + (" (the same as --format json)" if name == "forecast" else ""))
        if name == "forecast":
            p.add_argument("--history", type=int, default=1, metavar="N",
                           help="the last N sessions of every model (default %(default)s: the newest)")
            p.add_argument("--format", choices=FORMATS, default="table", help="table (default), csv or json")
        p.add_argument("--wait", type=float, default=LOCK_WAIT_SECONDS,
                       help="seconds to wait while a run holds the DuckDB file (default %(default)s)")
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    env_file.apply()  # .env as the dagster commands read it: the planner and the runs it starts agree
    try:
        return args.func(args)
    except warehouse.WarehouseUnavailable as exc:  # missing, or held by a run past the wait: one sentence
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    sys.exit(main())
