"""A person approves a release in a real browser: the mail's link, the confirmation page, the button."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from browsers import ARGS, choose_browser

from mlops.approver import approval_links, wait_for_approval_mail

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"


def test_approver_clicks_approve_in_chromium_and_the_release_reaches_the_endpoint(tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = choose_browser()
    assert chromium is not None, "no Chromium or Chrome here: run scripts/test, which installs one"
    print(f"browser: {chromium.describe()}")
    work = tmp_path / "work"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    rehearsal = subprocess.Popen(
        [sys.executable, "-m", "mlops", "rehearse", "--approve", "manual", "--work-dir", str(work)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        mail, links = wait_for_approval_mail(
            work / "outbox", timeout=240, stop=lambda: rehearsal.poll() is not None
        )
        assert links == approval_links(mail) and set(links) == {"approve", "reject"}
        ARTIFACTS.mkdir(exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium.path, headless=True, args=ARGS)
            page = browser.new_page()
            response = page.goto(links["approve"])
            assert response.status == 200
            assert "accuracy" in page.content().lower()
            page.screenshot(path=str(ARTIFACTS / "approval-confirmation.png"), full_page=True)
            page.fill("#approver", "Ada Approver <ada@example.com>")
            page.fill("#reason", "held-out accuracy is fine")
            page.click("button[type=submit]")
            page.wait_for_load_state()
            assert "approved" in page.content().lower()
            page.screenshot(path=str(ARTIFACTS / "approval-decided.png"), full_page=True)
            again = page.goto(links["approve"])
            assert again.status == 409  # a second visit says it is already decided
            browser.close()
        out, err = rehearsal.communicate(timeout=240)
    finally:
        if rehearsal.poll() is None:
            rehearsal.kill()
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "SUCCEEDED", err[-3000:]
    assert summary["prediction"] == {"result": "setosa"}
    execution_output = summary["states"]
    assert "CreateEndpoint" in execution_output
    assert (ARTIFACTS / "approval-confirmation.png").stat().st_size > 1000
