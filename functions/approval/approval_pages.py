"""Small self-contained HTML for the approval mail and pages: no scripts, no external assets, all escaped."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from approval_charts import accuracy_bars, confusion_heatmap, row_fractions, shade

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
HTML = "text/html; charset=utf-8"
APPROVER_MAX_CHARS = 200
REASON_MAX_CHARS = 1000

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #bbb;padding:.2rem .5rem}"
    "th{background:#f2f2f2}dt{font-weight:bold}dd{margin:0 0 .5rem 0;word-break:break-all}"
    "label{display:block;margin-top:.8rem}input,textarea{width:100%;box-sizing:border-box;padding:.3rem}"
    "button{margin-top:1rem;padding:.5rem 1rem;font-size:1rem}"
)


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def short_commit(release: dict[str, Any]) -> str:
    return str(release.get("commit") or "unknown")[:7]


def format_accuracy(accuracy: Any, rows: Any = None) -> str:
    if not isinstance(accuracy, int | float) or isinstance(accuracy, bool):
        return "n/a"
    text = f"{accuracy:.4f} ({accuracy:.2%})"
    return f"{text} on {rows} rows" if rows is not None else text


def is_regression(evaluation: dict[str, Any]) -> bool:
    return evaluation.get("problem_type") == "regression"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_regression(figures: dict[str, Any], rows: Any = None) -> str:
    """RMSE, MAE and R² of a regression (the model's own units for the first two)."""
    if not _number(figures.get("rmse")):
        return "n/a"
    text = f"RMSE {figures['rmse']:.4g}, MAE {figures.get('mae', 0):.4g}, R² {figures.get('r2', 0):.4f}"
    return f"{text} on {rows} rows" if rows is not None else text


def held_out_label(evaluation: dict[str, Any]) -> str:
    return "Held-out metrics" if is_regression(evaluation) else "Held-out accuracy"


def held_out_text(evaluation: dict[str, Any]) -> str:
    """The model's held-out figures, by its problem type (metadata.json's, as Evaluate read it)."""
    if is_regression(evaluation):
        target = (evaluation.get("model") or {}).get("target")
        figures = format_regression(evaluation.get("metrics") or {}, evaluation.get("rows"))
        return figures + (f" (target: {target})" if target else "")
    return format_accuracy(evaluation.get("accuracy"), evaluation.get("rows"))


def subject_figure(evaluation: dict[str, Any]) -> str:
    """The one figure a subject line has room for: held-out accuracy, or a regression's RMSE."""
    if is_regression(evaluation):
        rmse = (evaluation.get("metrics") or {}).get("rmse")
        return f"Held-out RMSE {rmse:.4g}" if _number(rmse) else "Held-out RMSE n/a"
    return f"Held-out accuracy {format_accuracy(evaluation.get('accuracy'))}"


def page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="robots" content="noindex, nofollow">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{e(title)}</h1>{body}</body></html>\n"
    )


def message_page(title: str, message: str) -> str:
    return page(title, f"<p>{e(message)}</p>")


def confusion_matrix_html(labels: list[Any], matrix: list[list[Any]]) -> str:
    """The counts as a table whose cells are shaded like the heat map (a share of the true label's rows)."""
    if not labels or not matrix:
        return "<p>No confusion matrix.</p>"
    head = "".join(f"<th>{e(label)}</th>" for label in labels)
    try:
        fractions = row_fractions(matrix)
    except TypeError:  # not numbers: shown, not shaded
        fractions = [[0.0] * len(row) for row in matrix]

    def cell(count: Any, fraction: float) -> str:
        red, green, blue = shade(fraction)
        ink = "#fff" if fraction > 0.6 else "#222"
        return f'<td style="background:#{red:02x}{green:02x}{blue:02x};color:{ink}">{e(count)}</td>'

    rows = "".join(
        f"<tr><th>{e(label)}</th>"
        + "".join(cell(count, fraction) for count, fraction in zip(row, shares, strict=False))
        + "</tr>"
        for label, row, shares in zip(labels, matrix, fractions, strict=False)
    )
    return (
        "<table><caption>Confusion matrix (rows: true label, columns: predicted)</caption>"
        f"<tr><th>true \\ predicted</th>{head}</tr>{rows}</table>"
    )


def champion_text(evaluation: dict[str, Any]) -> str:
    champion = evaluation.get("champion")
    if not champion:
        return "No endpoint is in service, so there is nothing to compare with."
    config = champion.get("endpoint_config") or "unknown config"
    if champion.get("error"):
        return f"The serving endpoint ({config}) could not be scored: {champion['error']}"
    if is_regression(evaluation):
        gate = evaluation.get("gate") or {}
        metric, label = gate.get("metric") or "rmse", gate.get("label") or "RMSE"
        ours, theirs = (evaluation.get("metrics") or {}).get(metric), champion.get(metric)
        scored = format_regression(champion, champion.get("rows"))
    else:
        label, ours, theirs = "", evaluation.get("accuracy"), champion.get("accuracy")
        scored = format_accuracy(theirs, champion.get("rows"))
    delta = ""
    if _number(ours) and _number(theirs):
        delta = f"; this release {label + ' ' if label else ''}{ours - theirs:+.4f}"
    return f"The serving endpoint ({config}) scores {scored} on the same held-out rows{delta}."


def format_training_metrics(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "not recorded"
    parts = []
    if "training_accuracy" in metrics:
        parts.append(
            f"training accuracy {metrics['training_accuracy']:.4f} on {metrics.get('rows', '?')} rows"
        )
    if _number(metrics.get("rmse")):
        parts.append(f"training {format_regression(metrics, metrics.get('rows', '?'))}")
    cv = metrics.get("cross_validation") or {}
    if cv and "rmse" in cv:
        parts.append(
            f"{cv.get('folds')}-fold cross-validation RMSE {cv['rmse']:.4g} ± {cv.get('std', 0):.4g}"
        )
    elif cv:
        parts.append(
            f"{cv.get('folds')}-fold cross-validation {cv.get('accuracy', 0):.4f} ± {cv.get('std', 0):.4f}"
        )
    if "tree_depth" in metrics:
        parts.append(f"tree depth {metrics['tree_depth']}, {metrics.get('tree_leaves', '?')} leaves")
    return "; ".join(parts) or "not recorded"


PREDICTIONS_LINK_SECONDS = 3600
FRESH_LINK_NOTE = (
    "open the Approve or Reject link for a fresh download link (nothing is decided until you submit its form)"
)


def chart_images(evidence: dict[str, Any]) -> dict[str, bytes]:
    """The PNG charts of the evidence: "confusion" (heat map) and "accuracy" (candidate beside live model)."""
    evaluation = evidence.get("evaluation") or {}
    charts = {
        "confusion": confusion_heatmap(evaluation.get("confusion_matrix") or []),
        "accuracy": accuracy_bars(
            evaluation.get("accuracy"), (evaluation.get("champion") or {}).get("accuracy")
        ),
    }
    return {name: image for name, image in charts.items() if image}


CHART_ALT = {
    "confusion": "Confusion matrix as a heat map: rows are the true labels, columns the predictions; the darker "
    "a cell, the larger its share of that label's rows",
    "accuracy": "Held-out accuracy on a 0 to 1 scale: the candidate (green) above the live model (grey)",
}


def charts_html(sources: dict[str, str], evaluation: dict[str, Any]) -> str:
    """The charts with a line under each; `sources` are data: URIs (the page) or cid: URIs (the mail)."""
    live = (evaluation.get("champion") or {}).get("accuracy")
    captions = {
        "confusion": "The matrix as a heat map: the darker, the larger the share of the true label's rows.",
        "accuracy": f"Held-out accuracy on a 0 to 1 scale: this release {format_accuracy(evaluation.get('accuracy'))}"
        + (f" (green), the live model {format_accuracy(live)} (grey)." if live is not None else " (green)."),
    }
    return "".join(
        f'<p><img src="{e(sources[name])}" alt="{e(CHART_ALT[name])}"><br><small>{e(captions[name])}</small></p>'
        for name in CHART_ALT
        if name in sources
    )


def data_uri(png_bytes: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes).decode("ascii")


def evidence_html(
    evidence: dict[str, Any],
    *,
    predictions_url: str | None = None,
    chart_sources: dict[str, str] | None = None,
) -> str:
    """The evidence as HTML; `predictions_url` is a link presigned for this page, else where to get one;
    `chart_sources` are where the charts' images are (none: no charts)."""
    release = evidence.get("release") or {}
    training = evidence.get("training") or {}
    evaluation = evidence.get("evaluation") or {}
    items = [
        ("Commit", e(release.get("commit"))),
        ("Image", e(release.get("image_uri"))),
        ("Training job", e(training.get("job_name"))),
        ("Training metrics", e(format_training_metrics(evaluation.get("training_metrics")))),
        (held_out_label(evaluation), e(held_out_text(evaluation))),
        *(
            [("Quality gate", e(evaluation["gate"]["reason"]))]
            if (evaluation.get("gate") or {}).get("reason")
            else []
        ),
        ("Current endpoint", e(champion_text(evaluation))),
        ("Evaluation report", e(evaluation.get("report_uri"))),
        ("Model package", e(evidence.get("model_package_arn"))),
    ]
    if predictions_url:
        items.append(
            (
                "Predictions",
                f'<a href="{e(predictions_url)}">download</a> (valid for an hour; open this page again '
                "for a new link)",
            )
        )
    elif evaluation.get("predictions_object"):
        items.append(("Predictions", f"{e(evaluation['predictions_object'])}: {e(FRESH_LINK_NOTE)}"))
    listing = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in items)
    matrix = (
        ""
        if is_regression(evaluation)
        else confusion_matrix_html(evaluation.get("labels") or [], evaluation.get("confusion_matrix") or [])
    )
    return f"<dl>{listing}</dl>{matrix}{charts_html(chart_sources or {}, evaluation)}"


def confirmation_page(
    evidence: dict[str, Any], action: str, expires_at: str, predictions_url: str | None = None
) -> str:
    verb = "Approve" if action == "approve" else "Reject"
    commit = short_commit(evidence.get("release") or {})
    form = (
        '<form method="post">'
        f'<label for="approver">Your name or email (required, at most {APPROVER_MAX_CHARS} characters)'
        "</label>"
        f'<input id="approver" name="approver" required maxlength="{APPROVER_MAX_CHARS}" '
        'autocomplete="email">'
        f'<label for="reason">Reason (optional, at most {REASON_MAX_CHARS} characters)</label>'
        f'<textarea id="reason" name="reason" rows="4" maxlength="{REASON_MAX_CHARS}"></textarea>'
        f'<button type="submit">{verb} release</button></form>'
    )
    body = (
        f"<p>You are about to <strong>{verb.lower()}</strong> release {e(commit)}. "
        f"Nothing has been decided yet. This link expires at {e(expires_at)}.</p>"
        + evidence_html(
            evidence,
            predictions_url=predictions_url,
            chart_sources={name: data_uri(image) for name, image in chart_images(evidence).items()},
        )
        + form
    )
    return page(f"{verb} release {commit}?", body)
