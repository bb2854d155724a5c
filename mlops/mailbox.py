"""Reading the local outbox's mails: what `mlops mail` prints and what the rehearsal's approver follows.

Standard library only, so reading mail does not load the local AWS.
"""

from __future__ import annotations

import email.policy
import re
import tempfile
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path

URL = re.compile(r"https?://[^\s<>\"')]+")


class PageLinks(HTMLParser):
    """The links (href, text) and form fields (name: value) of an HTML page or mail part."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.inputs: dict[str, str] = {}
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        attributes = dict(attrs)
        if tag == "a" and attributes.get("href"):
            self._href, self._text = attributes["href"], []
        if tag in ("input", "textarea") and attributes.get("name"):
            self.inputs[attributes["name"]] = attributes.get("value") or ""

    def handle_data(self, data) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def read_message(path: Path) -> EmailMessage:
    with path.open("rb") as handle:
        return BytesParser(policy=email.policy.default).parse(handle)


def mails(outbox: Path) -> list[Path]:
    return sorted(outbox.glob("*.eml"))


def links(message: EmailMessage) -> list[tuple[str, str]]:
    """(href, text) of every link: from the HTML part, else the URLs written in the text part."""
    html = message.get_body(preferencelist=("html",))
    if html is not None:
        parser = PageLinks()
        parser.feed(html.get_content())
        return parser.links
    text = message.get_body(preferencelist=("plain",))
    return [(url, "") for url in URL.findall(text.get_content())] if text is not None else []


def latest_work_dir(root: Path | None = None) -> Path | None:
    """The newest rehearsal work dir that has an outbox (where `mlops rehearse` puts them by default)."""
    candidates = Path(root or tempfile.gettempdir()).glob("mlops-rehearsal-*/outbox")
    newest = max(candidates, key=lambda outbox: outbox.stat().st_mtime, default=None)
    return newest.parent if newest else None


def listing(outbox: Path) -> str:
    lines = []
    for number, path in enumerate(mails(outbox), start=1):
        message = read_message(path)
        lines.append(f"{number:>3}  {message['Date'] or '':<31}  {message['Subject'] or '(no subject)'}")
    return "\n".join(lines)


def readable(path: Path) -> str:
    """One mail as a person reads it: the headers that matter, the text part, then its links."""
    message = read_message(path)
    lines = [f"{name + ':':<9}{message[name]}" for name in ("From", "To", "Date", "Subject") if message[name]]
    lines.append(f"File:    {path}")
    text = message.get_body(preferencelist=("plain",))
    lines += ["", text.get_content().rstrip() if text is not None else "(no text part)"]
    found = links(message)
    if found:
        lines += ["", "Links:"] + [
            f"  {label or href}: {href}" if label else f"  {href}" for href, label in found
        ]
    return "\n".join(lines)
