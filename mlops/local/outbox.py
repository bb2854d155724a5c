"""A local mail outbox: every SES send and every SNS e-mail delivery is written as a real ``.eml`` file."""

from __future__ import annotations

import email.policy
import itertools
import re
import threading
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from moto.ses.models import SESBackend
from moto.sns.models import Subscription

_active: Outbox | None = None
_originals: dict[str, Any] = {}


class Outbox:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        # Continue numbering after mail already in the folder, so a reused work dir loses nothing.
        self._counter = itertools.count(len(list(folder.glob("*.eml"))) + 1)
        self._lock = threading.Lock()

    def write(self, raw: bytes, subject: str) -> Path:
        slug = re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")[:60] or "message"
        with self._lock:
            path = self.folder / f"{next(self._counter):03d}-{slug}.eml"
        # Delivered whole, as a maildir does: a reader polling for *.eml never sees a half-written mail
        # (the approver took one for "not an approval mail" and then waited for the release's timeout).
        partial = path.with_suffix(".partial")
        partial.write_bytes(raw)
        partial.replace(path)
        return path

    def write_text_mail(self, sender: str, to: list[str], subject: str, body: str) -> Path:
        message = EmailMessage(policy=email.policy.SMTP)
        message["From"], message["To"], message["Subject"] = sender, ", ".join(to), subject
        message["Date"], message["Message-ID"] = formatdate(localtime=False), make_msgid(domain="local")
        message.set_content(body)
        return self.write(message.as_bytes(), subject)

    def messages(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))


def read_message(path: Path) -> EmailMessage:
    with path.open("rb") as handle:
        return email.message_from_binary_file(handle, policy=email.policy.default)  # type: ignore[return-value]


def _send_raw_email(self, source: str, destinations: list[str], raw_data: str):
    result = _originals["send_raw_email"](self, source=source, destinations=destinations, raw_data=raw_data)
    if _active:
        parsed = email.message_from_string(raw_data, policy=email.policy.default)
        _active.write(raw_data.encode(), str(parsed.get("Subject", "message")))
    return result


def _send_email(self, source: str, subject: str, body: str, destinations: dict[str, list[str]]):
    result = _originals["send_email"](
        self, source=source, subject=subject, body=body, destinations=destinations
    )
    if _active:
        _active.write_text_mail(source, destinations.get("ToAddresses", []), subject, body)
    return result


def _sns_publish(self, message: str, *args, subject: str | None = None, **kwargs):
    if _active and self.protocol in ("email", "email-json"):
        topic_name = self.topic.arn.rsplit(":", 1)[-1]
        _active.write_text_mail(
            f"AWS Notifications <no-reply@sns.{topic_name}.local>",
            [self.endpoint],
            subject or "AWS Notification Message",
            message,
        )
    return _originals["sns_publish"](self, message, *args, subject=subject, **kwargs)


def install(outbox: Outbox) -> None:
    global _active
    _active = outbox
    if _originals:
        return
    _originals["send_raw_email"] = SESBackend.send_raw_email
    _originals["send_email"] = SESBackend.send_email
    _originals["sns_publish"] = Subscription.publish
    SESBackend.send_raw_email = _send_raw_email
    SESBackend.send_email = _send_email
    Subscription.publish = _sns_publish


def uninstall() -> None:
    """Mail is no longer written to the outbox (moto keeps its own record of it as usual)."""
    global _active
    _active = None
