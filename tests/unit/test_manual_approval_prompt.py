"""What `mlops rehearse --approve manual` tells the person: where to decide, how from a terminal, and when the
release stops waiting."""

import calendar
import shlex
from pathlib import Path

from mlops.approver import curl_decision, manual_prompt
from mlops.rehearsal import gives_up

LINKS = {
    "approve": "http://127.0.0.1:4001/Prod/approval?d=abc.def",
    "reject": "http://127.0.0.1:4001/Prod/approval?d=ghi.jkl",
}


def test_the_approval_timeout_gives_up_first_when_it_ends_before_the_release_timeout():
    assert gives_up(1000.0, 1600.0, 600, "120") == (
        1120.0,
        "ApprovalTimeoutSeconds=120",
        "FAILED with ApprovalTimedOut",
    )


def test_the_release_timeout_gives_up_first_when_the_approval_would_outlast_it():
    assert gives_up(1000.0, 1300.0, 600, "86400") == (
        1300.0,
        "--timeout 600",
        "ABORTED with RehearsalTimedOut",
    )
    assert gives_up(1000.0, 1300.0, 600, None)[1] == "--timeout 600"


def test_the_terminal_decision_posts_the_form_fields_url_encoded_and_asks_for_json():
    words = shlex.split(curl_decision(LINKS["approve"], "Ada <ada@example.com>", "fine & dandy"))
    assert words[:5] == ["curl", "-sS", "-X", "POST", LINKS["approve"]]
    assert words[words.index("--data-urlencode") + 1] == "approver=Ada <ada@example.com>"
    assert "reason=fine & dandy" in words and "Accept: application/json" in words


def test_the_prompt_gives_both_links_both_curls_and_the_time_it_gives_up():
    at = calendar.timegm((2026, 12, 1, 10, 22, 31))
    text = manual_prompt(Path("/w/outbox/001-approve.eml"), LINKS, at, "ApprovalTimeoutSeconds=600", "FAILED")
    assert LINKS["approve"] in text and "/w/outbox/001-approve.eml" in text
    assert curl_decision(LINKS["approve"], "Your Name <you@example.com>", "looks good") in text
    assert curl_decision(LINKS["reject"], "Your Name <you@example.com>", "why") in text
    assert "until 10:22:31 UTC (ApprovalTimeoutSeconds=600), then ends FAILED." in text
