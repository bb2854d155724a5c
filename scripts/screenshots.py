"""Screenshots of the approval mail, its confirmation page and the "is live" mail, taken from a real rehearsal.

    scripts/screenshots [--out docs/images]

Runs ``mlops rehearse --approve manual --serve``, renders the approval mail's HTML part (its ``cid:`` images
inlined) in headless Chromium, opens the mail's Approve link, approves on the page as a person would, and
renders the "is live" mail once the release is out; then stops the rehearsal. The browser is the one the
browser tests use (tests/browser/browsers.py). Exit 1 when the rehearsal or the browser fails, with the reason.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from html import escape
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This checkout's mlops, and the browser the tests choose.
sys.path[:0] = [str(REPO), str(REPO / "tests" / "browser")]

from browsers import ARGS, choose_browser  # noqa: E402

from mlops.approver import wait_for_approval_mail  # noqa: E402
from mlops.mailbox import mails, read_message  # noqa: E402

VIEWPORT = {"width": 900, "height": 700}
NAMES = ("approval-mail.png", "approval-page.png", "approval-decided.png", "live-mail.png")


class ScreenshotError(Exception):
    """The rehearsal or the browser did not get as far as the pictures; the message says where."""


def mail_html(path: Path) -> str:
    """The mail as a mail client shows it: its HTML part with ``cid:`` images as ``data:`` URLs, or its text
    part (SNS mails have only that) under the headers, in a fixed-width font."""
    message = read_message(path)
    html = message.get_body(preferencelist=("html",))
    if html is None:
        text = message.get_body(preferencelist=("plain",))
        if text is None:
            raise ScreenshotError(f"{path.name} has neither an HTML nor a text part")
        headers = "".join(
            f"<b>{name}:</b> {escape(str(message[name]))}<br>"
            for name in ("From", "To", "Subject")
            if message[name]
        )
        return (
            f'<body style="font-family: sans-serif; margin: 16px"><p>{headers}</p><hr>'
            f'<pre style="white-space: pre-wrap">{escape(text.get_content())}</pre></body>'
        )
    page = html.get_content()
    for part in message.walk():
        content_id = (part["Content-ID"] or "").strip("<>")
        if content_id and part.get_content_maintype() == "image":
            data = base64.b64encode(part.get_payload(decode=True)).decode()
            page = page.replace(f"cid:{content_id}", f"data:{part.get_content_type()};base64,{data}")
    return page


def start_rehearsal(work: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlops",
            "rehearse",
            "--approve",
            "manual",
            "--serve",
            "--work-dir",
            str(work),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=(work.parent / "rehearsal.log").open("w"),
        text=True,
    )


def wait_for_summary(rehearsal: subprocess.Popen) -> dict:
    for line in rehearsal.stdout:
        if line.startswith("{"):
            return json.loads(line)
    raise ScreenshotError(f"the rehearsal ended (exit {rehearsal.wait()}) without a summary")


def take(out: Path, work: Path, rehearsal: subprocess.Popen, browser_path: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    mail, links = wait_for_approval_mail(
        work / "outbox", timeout=240, stop=lambda: rehearsal.poll() is not None
    )
    if "approve" not in links:
        raise ScreenshotError(f"no Approve link in {mail.name}")
    written = [out / name for name in NAMES]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, headless=True, args=ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_content(mail_html(mail), wait_until="load")
        page.screenshot(path=str(written[0]), full_page=True)
        response = page.goto(links["approve"])
        if response is None or response.status != 200:
            raise ScreenshotError(f"the Approve link answered {response.status if response else 'nothing'}")
        page.screenshot(path=str(written[1]), full_page=True)
        page.fill("#approver", "Ada Approver <ada@example.com>")
        page.fill("#reason", "held-out accuracy is fine")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        page.screenshot(path=str(written[2]), full_page=True)
        summary = wait_for_summary(rehearsal)
        if summary["status"] != "SUCCEEDED":
            raise ScreenshotError(f"the release ended {summary['status']}: {summary.get('reason')}")
        live = [p for p in mails(work / "outbox") if "is live" in str(read_message(p)["Subject"])]
        if not live:
            raise ScreenshotError("no 'is live' mail in the outbox")
        page.set_content(mail_html(live[-1]), wait_until="load")
        page.screenshot(path=str(written[3]), full_page=True)
        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/screenshots",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", default="docs/images", help="folder the PNG files go to")
    args = parser.parse_args(argv)
    chromium = choose_browser()
    if chromium is None:
        print("error: no Chromium or Chrome here (scripts/test installs one)", file=sys.stderr)
        return 1
    out = (REPO / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlops-screenshots-") as folder:
        work = Path(folder) / "work"
        began = time.monotonic()
        rehearsal = start_rehearsal(work)
        try:
            written = take(out, work, rehearsal, chromium.path)
        except ScreenshotError as error:
            log = (Path(folder) / "rehearsal.log").read_text(errors="replace")
            print(f"error: {error}\nthe rehearsal's last lines:\n{log[-2000:]}", file=sys.stderr)
            return 1
        finally:
            if rehearsal.poll() is None:
                rehearsal.send_signal(signal.SIGTERM)
                rehearsal.wait(timeout=60)
    for path in written:
        print(
            f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}  {path.stat().st_size:,} bytes"
        )
    print(f"({chromium.describe()}, {time.monotonic() - began:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
