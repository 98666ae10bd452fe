"""The Dagster UI in a real browser: `dagster dev` on a free loopback port, Debian's Chromium driven by Playwright.

Open the asset graph, materialize an asset from its page, wait for the run to succeed, open the asset's events and
see its inline plot. Screenshots go to docs/screenshots/ (shown in the README). The server runs in its own process
group with a throwaway DAGSTER_HOME and a tiny REGIME_DATA_DIR, and is killed in `finally`.

Select it alone with `pytest -m browser`. It runs in the default `make test` whenever /usr/bin/chromium exists
(`.ci/run` installs it with apt-get) and skips elsewhere, saying why.
"""
from __future__ import annotations

import datetime as dt
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import duckdb
import polars as pl
import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
# Screenshots land in a temporary folder, so a test run leaves the tracked files alone; set
# REGIME_SCREENSHOT_DIR=docs/screenshots to refresh the README's pictures.
SHOTS = Path(os.environ.get("REGIME_SCREENSHOT_DIR") or Path(tempfile.gettempdir()) / "regime_platform_screenshots")

# The asset materialized from the UI and the metadata entry holding its inline plot. After the evaluation assets
# are merged, point these at one of them (e.g. an evaluation asset and its plot entry) and adapt `seed_data_dir`.
PLOT_ASSET = "forecast_scoreboard"
PLOT_ENTRY = "live_record"
GROUP = "forecasting"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: the UI test drives Debian's Chromium "
                                                     "(apt-get install chromium; .ci/run does)"),
]


def seed_data_dir(data_dir: Path) -> None:
    """A tiny warehouse: eight weeks of ledger rows for three models (most scored) and their walk-forward rows."""
    from regime_platform import calendar
    from regime_platform import storage as wh
    from regime_platform.forecasting import ledger
    from regime_platform.modeling.targets_version import scope_for
    from regime_platform.settings import Settings

    version = scope_for(Settings(data_dir=data_dir), "SPY").targets_version  # what the scoreboard reads
    rnd = random.Random(7)
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    try:
        wh.ensure_schema(con, ["regime_forecasts"])
        days = calendar.sessions(dt.date(2018, 11, 1), dt.date(2018, 12, 31))
        for i, day in enumerate(days):
            rows = []
            for model in ("lstm", "random_forest", "persistence"):
                p = rnd.random()
                scored = i < len(days) - 5
                rows.append({"ticker": "SPY", "as_of": day, "target_date": ledger.target_session(day, 5), "horizon": 5,
                             "model": model, "predicted_regime": int(p < 0.5), "probabilities": [p, 1 - p],
                             "model_version": f"{model}-demo", "price_source": "sample:^GSPC",
                             "status": "scored" if scored else "pending",
                             "realized_regime": rnd.randint(0, 1) if scored else None,
                             "labels_version": "demo" if scored else None})
            wh.write_forecasts(con, "SPY", day, pl.DataFrame(rows, schema=ledger.LEDGER_SCHEMA))
        wh.ensure_schema(con, ["oos_predictions"])
        for model, skill in (("lstm", 0.62), ("random_forest", 0.58), ("persistence", 0.7)):
            for _ in range(300):
                truth = rnd.randint(0, 1)
                pred = truth if rnd.random() < skill else 1 - truth
                con.execute("INSERT INTO market.oos_predictions VALUES ('SPY', ?, ?, 0, '2017-01-03', '2017-01-10', 5, "
                            "?, ?, ?, ?)", [version, model, pred, [0.8, 0.2] if pred == 0 else [0.2, 0.8], truth, truth])
    finally:
        con.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {server.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"dagster dev did not serve {url} within {timeout:.0f} s")


def stop(server: subprocess.Popen) -> None:
    """Terminate the whole process group (webserver, daemon, code servers, runs), then kill what is left."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    server.wait(timeout=10)


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory):
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    root = tmp_path_factory.mktemp("ui")
    home, data = root / "dagster_home", root / "data"
    home.mkdir()
    data.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster.yaml.template").read_text())
    seed_data_dir(data)
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "REGIME_DATA_DIR": str(data), "REGIME_SOURCE": "sample",
           "PYTHONWARNINGS": "ignore"}
    log = (root / "dagster_dev.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/server_info", server, timeout=240)
        yield f"http://127.0.0.1:{port}", home, root / "dagster_dev.log"
    finally:
        stop(server)
        log.close()


def wait_for_run(home: Path, timeout: float):
    from dagster import DagsterRunStatus

    from regime_platform_tests.instance import instance_at

    deadline = time.monotonic() + timeout
    with instance_at(home) as instance:
        while time.monotonic() < deadline:
            runs = instance.get_runs(limit=1)
            if runs and runs[0].status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE,
                                           DagsterRunStatus.CANCELED):
                return runs[0]
            time.sleep(1)
    raise TimeoutError(f"no run finished within {timeout:.0f} s")


def test_materialize_from_the_ui_and_see_the_inline_plot(dagster_ui):
    from playwright.sync_api import expect, sync_playwright

    base, home, log = dagster_ui
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            expect.set_options(timeout=60_000)  # expect() keeps its own 5 s default; a loaded 2-core machine needs more
            # the asset graph: every group, then the group of the asset under test
            page.goto(f"{base}/asset-groups")
            for group in ("ingestion", "features", "labels", "modeling", GROUP):
                expect(page.get_by_text(group, exact=True).first).to_be_visible()
            page.screenshot(path=str(SHOTS / "asset_graph.png"))
            page.goto(f"{base}/locations/regime_platform/asset-groups/{GROUP}")
            expect(page.get_by_text(PLOT_ASSET, exact=True).first).to_be_visible()
            expect(page.get_by_text("Loading...")).to_have_count(0)
            page.screenshot(path=str(SHOTS / "forecasting_group.png"))

            # materialize it from its page (the UI asks to confirm when upstream assets were never materialized)
            page.goto(f"{base}/assets/{PLOT_ASSET}")
            page.get_by_text("Materialize", exact=True).click()
            confirm = page.get_by_role("button", name="Confirm")
            try:
                confirm.click(timeout=5_000)
            except Exception:
                pass  # no confirmation asked
            run = wait_for_run(home, timeout=180)
            assert run.status.value == "SUCCESS", log.read_text()[-3000:]
            assert {k.to_user_string() for k in run.asset_selection} == {PLOT_ASSET}
            page.goto(f"{base}/runs/{run.run_id}")
            expect(page.get_by_text("Success").first).to_be_visible()
            expect(page.get_by_text("Loading run logs")).to_have_count(0)
            expect(page.get_by_text(f'Finished execution of step "{PLOT_ASSET}"').first).to_be_visible()
            page.screenshot(path=str(SHOTS / "run_succeeded.png"))

            # its latest materialization carries the plot inline (markdown with an embedded PNG)
            page.goto(f"{base}/assets/{PLOT_ASSET}?view=events")
            row = page.locator("tr", has_text=PLOT_ENTRY).first
            row.get_by_text("[Show Markdown]").click()
            image = page.locator('img[src^="data:image/png;base64,"]').first
            expect(image).to_be_visible()
            width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            assert width >= 400 and height >= 200
            page.screenshot(path=str(SHOTS / "inline_plot.png"))
        finally:
            browser.close()
