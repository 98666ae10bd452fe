"""How long a generated label takes to settle: the measurement behind the default of REGIME_SETTLE_SESSIONS (S).

    python benchmarks/bench_label_settling.py                       # every labeler, every 10th session
    python benchmarks/bench_label_settling.py --labelers drawdown --every 1

A hindsight label at date d can still change as the labels' fit end moves past d: a smoothed path is decoded
again, a bear market is dated from its peak only once the fall is confirmed, a refit moves the states. The
ledger scores a forecast for target d only once its labels saw S sessions after d (DESIGN §3a). For dates d
of the bundled S&P 500 sample, this fits each labeler the way the daily `regime_labels` asset does — on
every labelled session through d + k — and counts how often its label at d differs from the label of the fit
through the end of the data, for k = 0 (the online endpoint) … 252 sessions. A second measure holds the
labeler's parameters fixed (fit through the year before d, as a walk-forward fold does) and only extends the
decoded span: what the walk-forward's truth sees.

Writes ``benchmarks/results/label_settling.json`` and prints a table (share changed, with the number of dates).
"""
from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
from pathlib import Path

import polars as pl

from regime_platform.features.compute import compute_features
from regime_platform.ingestion.sources import SampleSource
from regime_platform.labels import labelable, make_labeler
from regime_platform.storage.files import write_json_atomic

RESULTS = Path(__file__).parent / "results" / "label_settling.json"
LAGS = [0, 5, 10, 21, 42, 63, 126, 252]


def load_sample() -> pl.DataFrame:
    bars = SampleSource().fetch("SPY", dt.date(1999, 1, 4), dt.date(2018, 12, 31)).with_columns(ticker=pl.lit("SPY"))
    return compute_features(bars).join(bars.select("date", "adj_close"), on="date")


def measure(frame: pl.DataFrame, name: str, every: int, first_year: int, refit_every: int) -> dict:
    rows = labelable(frame, make_labeler(name))
    dates = rows["date"].to_list()
    final = make_labeler(name).fit(rows).predict(rows)
    candidates = [i for i, d in enumerate(dates) if d.year >= first_year and i + max(LAGS) < len(dates)]
    sampled = candidates[::every]
    refit_changed = {k: 0 for k in LAGS}
    decode_changed = {k: 0 for k in LAGS}
    refit_dates = sampled[::refit_every]  # a refit per date and lag is the expensive part (a jump fit takes seconds)
    fold_labelers: dict[int, object] = {}
    for i in sampled:
        year = dates[i].year
        if year not in fold_labelers:  # a fold's labeler: fit through the end of the previous year
            fold_labelers[year] = make_labeler(name).fit(rows.filter(pl.col("date") < dt.date(year, 1, 1)))
        fold = fold_labelers[year]
        decoded_all = fold.predict(rows)
        for k in LAGS:
            through = rows.head(i + k + 1)
            if i in refit_dates:
                refit = make_labeler(name).fit(through).predict(through)
                refit_changed[k] += int(refit[i] != final[i])
            decode_changed[k] += int(fold.predict(through)[i] != decoded_all[i])
    n, n_refit = len(sampled), len(refit_dates)
    return {"labeler": name, "dates": n, "refit_dates": n_refit, "first": str(dates[sampled[0]]),
            "last": str(dates[sampled[-1]]),
            "refit_share_changed": {str(k): refit_changed[k] / n_refit for k in LAGS},
            "decode_share_changed": {str(k): decode_changed[k] / n for k in LAGS}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labelers", default="jump,hmm,kmeans,drawdown")
    ap.add_argument("--every", type=int, default=10, help="sample every Nth session (default 10)")
    ap.add_argument("--refit-every", type=int, default=12,
                    help="refit through d + k on every Nth sampled date only (default 12: a jump fit takes seconds)")
    ap.add_argument("--first-year", type=int, default=2004)
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    frame = load_sample()
    results, started = [], time.perf_counter()
    for name in args.labelers.split(","):
        t0 = time.perf_counter()
        result = measure(frame, name.strip(), args.every, args.first_year, args.refit_every)
        result["seconds"] = round(time.perf_counter() - t0, 1)
        results.append(result)
        print(f"{result['labeler']}: {result['dates']} dates {result['first']} … {result['last']} "
              f"(refit on {result['refit_dates']} of them; {result['seconds']} s)")
        print("  k sessions after d:  " + "  ".join(f"{k:>5}" for k in LAGS))
        for key, title in (("refit_share_changed", "refit through d+k "), ("decode_share_changed", "fold, decoded d+k")):
            print(f"  {title}:  " + "  ".join(f"{result[key][str(k)]:5.2f}" for k in LAGS))
    write_json_atomic(args.output, {
        "what": "share of sampled dates d whose label at d differs from the final label, by sessions k seen after d",
        "data": "bundled sample, S&P 500 index standing in for SPY, 1999-2018",
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1), "results": results})
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
