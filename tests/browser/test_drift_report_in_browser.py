"""The drift report a person opens: the page from a shifted-traffic rehearsal, in headless Chromium, from the
file alone (no server), with one chart per feature and the drifted one marked."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from browsers import ARGS, choose_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def test_the_drift_report_shows_one_chart_per_feature_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = choose_browser()
    assert chromium is not None, "no Chromium or Chrome here: run scripts/test, which installs one"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops",
            "rehearse",
            "--work-dir",
            str(tmp_path / "work"),
            "--traffic",
            "500",
            "--shift",
            "petal_width=+1.5",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    report = Path(summary["drift"]["report_file"])
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium.path, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        requests = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(report.as_uri())
        sections = page.locator("section.feature")
        names = [sections.nth(i).locator("h2").inner_text() for i in range(sections.count())]
        assert names == [*FEATURES, "predictions"]
        for i in range(len(FEATURES)):
            chart = sections.nth(i).locator("svg.chart")
            assert chart.count() == 1 and chart.bounding_box()["width"] > 200  # drawn, not just present
        assert page.locator("section.feature.drifted h2").all_inner_texts() == ["petal_width", "predictions"]
        assert requests == [report.as_uri()]  # self-contained: nothing else loaded
        page.screenshot(path=str(ARTIFACTS / "drift-report.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "drift-report.png").stat().st_size > 10_000
