"""The person at the other end of the approval mail: finds the links and follows them over HTTP."""

from __future__ import annotations

import shlex
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .mailbox import PageLinks, read_message

APPROVAL_PATH = "/approval?"


def approval_links(mail: Path) -> dict[str, str]:
    """``{"approve": url, "reject": url}`` from the HTML part of an approval mail."""
    message = read_message(mail)
    html = message.get_body(preferencelist=("html",))
    if html is None:
        return {}
    parser = PageLinks()
    parser.feed(html.get_content())
    links = {}
    for href, text in parser.links:
        if APPROVAL_PATH in href:
            for action in ("approve", "reject"):
                if action in text.lower():
                    links[action] = href
    return links


def wait_for_approval_mail(
    outbox: Path, timeout: float, stop=lambda: False, skip: set[Path] = frozenset()
) -> tuple[Path, dict[str, str]]:
    """The first approval mail that is not in ``skip`` (mails of earlier releases)."""
    deadline = time.monotonic() + timeout
    seen = set(skip)
    while time.monotonic() < deadline and not stop():
        for mail in sorted(set(outbox.glob("*.eml")) - seen):
            links = approval_links(mail)
            if links:
                return mail, links
            seen.add(mail)  # another kind of mail: it will not become an approval request
        time.sleep(0.05)
    raise TimeoutError("no approval mail arrived")


def look_at_predictions(links: list[tuple[str, str]]) -> int | None:
    """Opens the page's predictions download, as an approver checking the evidence would: a link presigned by
    the approval function's role, so the local S3 checks that role. Returns its HTTP status (None: no link)."""
    href = next((h for h, text in links if text == "download"), None)
    if href is None or urllib.parse.urlsplit(href).scheme not in ("http", "https"):
        return None
    try:
        with urllib.request.urlopen(href, timeout=30) as download:  # noqa: S310 - scheme checked above
            download.read()
            return download.status
    except urllib.error.HTTPError as error:
        return error.code


def click(url: str, approver: str, reason: str) -> tuple[int, str]:
    """GET the confirmation page, then submit its form as the person would. Returns the final status and page."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("approval links must be http(s)")
    try:
        with urllib.request.urlopen(url, timeout=30) as page:  # noqa: S310 - scheme checked above
            html = page.read().decode()
    except urllib.error.HTTPError as error:  # expired, forged or already decided: the page says which
        return error.code, error.read().decode()
    parser = PageLinks()
    parser.feed(html)
    look_at_predictions(parser.links)
    fields = dict(parser.inputs)
    for name in fields:
        if "approver" in name or name == "name":
            fields[name] = approver
        elif "reason" in name or "comment" in name:
            fields[name] = reason
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - scheme checked above
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def curl_decision(url: str, approver: str, reason: str) -> str:
    """The terminal's way to submit a link's confirmation form: a POST with the form's fields, JSON back."""
    return shlex.join(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            url,
            "-H",
            "Accept: application/json",
            "--data-urlencode",
            f"approver={approver}",
            "--data-urlencode",
            f"reason={reason}",
        ]
    )


def manual_prompt(mail: Path, links: dict[str, str], gives_up_at: float, setting: str, outcome: str) -> str:
    """What ``--approve manual`` tells the person: the link for a browser, the same decision from a terminal,
    and when the release stops waiting (``gives_up_at``, epoch seconds), by which setting, with what outcome."""
    when = time.strftime("%H:%M:%S UTC", time.gmtime(gives_up_at))
    lines = [
        "",
        f"Approval mail: {mail} (`mlops mail` lists the outbox and prints it)",
        "Approve in a browser: open this link; nothing is decided until you press the page's button:",
        f"  {links.get('approve')}",
        "Or from a terminal (approver is required, reason is optional):",
        f"  {curl_decision(links['approve'], 'Your Name <you@example.com>', 'looks good')}",
    ]
    if "reject" in links:
        lines += [
            "To reject instead:",
            f"  {curl_decision(links['reject'], 'Your Name <you@example.com>', 'why')}",
        ]
    lines += [f"The release waits for a decision until {when} ({setting}), then ends {outcome}.", "", ""]
    return "\n".join(lines)
