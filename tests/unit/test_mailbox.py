"""`mlops mail`: a rehearsal's outbox listed, and one mail printed as a person reads it, links included."""

import os
from email.message import EmailMessage

import pytest

from mlops import mailbox
from mlops.cli import main

APPROVE = "http://127.0.0.1:4000/Prod/approval?d=eyJhIjoiYXBwcm92ZSJ9.c2ln"
REJECT = "http://127.0.0.1:4000/Prod/approval?d=eyJhIjoicmVqZWN0In0.c2ln"


def write_mail(outbox, name, subject, text, html=None):
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = (
        "releases@example.com",
        "approver@example.com",
        subject,
    )
    message["Date"] = "Tue, 01 Dec 2026 06:00:00 +0000"
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    outbox.mkdir(parents=True, exist_ok=True)
    (outbox / name).write_bytes(message.as_bytes())


@pytest.fixture
def work(tmp_path):
    outbox = tmp_path / "work" / "outbox"
    write_mail(
        outbox,
        "001-approve.eml",
        "Approve release a1b2c3d? Held-out accuracy 0.9667",
        "Model package:     arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-iris/1\n",
        f'<p><a href="{APPROVE}">Approve release a1b2c3d</a> <a href="{REJECT}">Reject release a1b2c3d</a></p>',
    )
    write_mail(
        outbox, "002-live.eml", "Release a1b2c3d is live", "See https://example.com/console for more.\n"
    )
    return tmp_path / "work"


def test_without_a_number_the_mails_are_listed_with_their_dates_and_subjects(work, capsys):
    assert main(["mail", "--work-dir", str(work)]) == 0
    out = capsys.readouterr().out
    assert "  1  Tue, 01 Dec 2026 06:00:00 +0000  Approve release a1b2c3d? Held-out accuracy 0.9667" in out
    assert "  2  " in out and "Release a1b2c3d is live" in out


def test_a_mail_is_printed_with_its_text_and_its_links(work, capsys):
    assert main(["mail", "1", "--work-dir", str(work)]) == 0
    out = capsys.readouterr().out
    assert "Subject: Approve release a1b2c3d?" in out
    assert "model-package/mlops-iris/1" in out
    assert f"  Approve release a1b2c3d: {APPROVE}" in out and f"  Reject release a1b2c3d: {REJECT}" in out


def test_a_text_only_mail_lists_the_urls_in_its_text(work, capsys):
    assert main(["mail", "2", "--work-dir", str(work)]) == 0
    assert "Links:\n  https://example.com/console" in capsys.readouterr().out


def test_a_number_past_the_last_mail_says_which_numbers_exist(work, capsys):
    assert main(["mail", "3", "--work-dir", str(work)]) == 2
    assert "there are 2 mails" in capsys.readouterr().err


def test_a_work_dir_without_mail_is_named(tmp_path, capsys):
    assert main(["mail", "--work-dir", str(tmp_path)]) == 2
    assert f"--work-dir {tmp_path}: no mail in" in capsys.readouterr().err


def test_the_newest_rehearsal_work_dir_is_the_default(tmp_path):
    older, newer = tmp_path / "mlops-rehearsal-a", tmp_path / "mlops-rehearsal-b"
    for work in (older, newer):
        (work / "outbox").mkdir(parents=True)
    os.utime(older / "outbox", (1, 1))
    assert mailbox.latest_work_dir(tmp_path) == newer
    assert mailbox.latest_work_dir(tmp_path / "nothing-here") is None
