"""The approval request mail: one multipart/alternative message with the evidence and two signed links."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from approval_pages import (
    FRESH_LINK_NOTE,
    champion_text,
    chart_images,
    e,
    evidence_html,
    format_training_metrics,
    held_out_label,
    held_out_text,
    is_regression,
    page,
    short_commit,
    subject_figure,
)


def confusion_matrix_text(labels: list[Any], matrix: list[list[Any]]) -> str:
    if not labels or not matrix:
        return "(no confusion matrix)"
    cells = [["true \\ predicted", *map(str, labels)]]
    cells += [[str(label), *map(str, row)] for label, row in zip(labels, matrix, strict=False)]
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(len(cells[0]))]
    return "\n".join("  ".join(cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in cells)


def _text_body(evidence: dict[str, Any], approve_url: str, reject_url: str, expires_at: str) -> str:
    release = evidence.get("release") or {}
    training = evidence.get("training") or {}
    evaluation = evidence.get("evaluation") or {}
    lines = [
        f"Release {short_commit(release)} is waiting for your decision.",
        "",
        f"Commit:            {release.get('commit')}",
        f"Image:             {release.get('image_uri')}",
        f"Training job:      {training.get('job_name')}",
        f"Training metrics:  {format_training_metrics(evaluation.get('training_metrics'))}",
        f"{held_out_label(evaluation) + ':':<19}{held_out_text(evaluation)}",
        *(
            [f"Quality gate:      {evaluation['gate']['reason']}"]
            if (evaluation.get("gate") or {}).get("reason")
            else []
        ),
        f"Current endpoint:  {champion_text(evaluation)}",
        f"Report:            {evaluation.get('report_uri')}",
        f"Model package:     {evidence.get('model_package_arn')}",
    ]
    if evaluation.get("predictions_object"):
        lines.append(f"Predictions:       {evaluation['predictions_object']}")
        lines.append(f"                   ({FRESH_LINK_NOTE})")
    if not is_regression(evaluation):
        lines += [
            "",
            confusion_matrix_text(evaluation.get("labels") or [], evaluation.get("confusion_matrix") or []),
        ]
    lines += [
        "",
        "Each link opens a confirmation page; nothing is decided until you submit it.",
        "",
        f"Approve: {approve_url}",
        "",
        f"Reject:  {reject_url}",
        "",
        f"The links expire at {expires_at}. Without a decision by then the release stops.",
    ]
    return "\n".join(lines) + "\n"


def _html_body(
    evidence: dict[str, Any], approve_url: str, reject_url: str, expires_at: str, chart_ids: dict[str, str]
) -> str:
    commit = short_commit(evidence.get("release") or {})
    sources = {name: f"cid:{content_id[1:-1]}" for name, content_id in chart_ids.items()}
    body = (
        f"<p>Release {e(commit)} is waiting for your decision.</p>"
        f"{evidence_html(evidence, chart_sources=sources)}"
        "<p>Each link opens a confirmation page; nothing is decided until you submit it.</p>"
        f'<p><a href="{e(approve_url)}">Approve release {e(commit)}</a> &nbsp; '
        f'<a href="{e(reject_url)}">Reject release {e(commit)}</a></p>'
        f"<p>The links expire at {e(expires_at)}. Without a decision by then the release stops.</p>"
    )
    return page(f"Release {commit} needs approval", body)


def build_approval_mail(
    *,
    sender: str,
    recipient: str,
    evidence: dict[str, Any],
    approve_url: str,
    reject_url: str,
    expires_at: str,
) -> EmailMessage:
    evaluation = evidence.get("evaluation") or {}
    message = EmailMessage()
    message["Subject"] = (
        f"Approve release {short_commit(evidence.get('release') or {})}? {subject_figure(evaluation)}"
    )
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(_text_body(evidence, approve_url, reject_url, expires_at))
    # The charts travel inside the mail (multipart/related, cid: links): clients block remote images.
    charts = chart_images(evidence)
    chart_ids = {name: make_msgid(domain="charts.local") for name in charts}
    message.add_alternative(
        _html_body(evidence, approve_url, reject_url, expires_at, chart_ids), subtype="html"
    )
    html_part = message.get_payload()[1]
    for name, image in charts.items():
        html_part.add_related(image, "image", "png", cid=chart_ids[name], filename=f"{name}.png")
    return message
