"""The drift report as one self-contained HTML page: a small bar chart per feature (inline SVG), no server,
no script, no external file, so it opens from S3 or a mail attachment as it is."""

from __future__ import annotations

import itertools
from html import escape
from typing import Any

WIDTH, HEIGHT, PAD = 320, 150, 24
BASELINE_COLOUR, LIVE_COLOUR, DRIFT_COLOUR = "#9aa5b1", "#2f6fdf", "#d64545"


def _bin_labels(edges: list[float]) -> list[str]:
    if not edges:
        return ["all"]
    labels = [f"< {edges[0]:g}"]
    labels += [f"{lo:g} to {hi:g}" for lo, hi in itertools.pairwise(edges)]
    return [*labels, f"≥ {edges[-1]:g}"]


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def bar_chart(title: str, labels: list[str], baseline: list[int], live: list[int], drifted: bool) -> str:
    """Baseline and live shares side by side per bin, as an inline SVG element."""
    base_shares, live_shares = _shares(baseline), _shares(live)
    top = max([*base_shares, *live_shares, 0.01])
    slot = (WIDTH - 2 * PAD) / max(len(labels), 1)
    bar = slot * 0.38
    plot = HEIGHT - 2 * PAD
    parts = [
        f'<svg class="chart" role="img" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}"><title>{escape(title)}</title>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#555"/>',
    ]
    live_colour = DRIFT_COLOUR if drifted else LIVE_COLOUR
    for i, label in enumerate(labels):
        x = PAD + i * slot + slot * 0.1
        for offset, share, colour in (
            (0, base_shares[i], BASELINE_COLOUR),
            (bar, live_shares[i], live_colour),
        ):
            height = plot * share / top
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{HEIGHT - PAD - height:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" fill="{colour}"><title>{share:.0%}</title></rect>'
            )
        parts.append(
            f'<text x="{x + bar:.1f}" y="{HEIGHT - PAD + 14}" font-size="10" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _section(name: str, value: float | None, drifted: bool, chart: str, note: str) -> str:
    verdict = "drifted" if drifted else ("no live data" if value is None else "stable")
    shown = "n/a" if value is None else f"{value:.3f}"
    return (
        f'<section class="feature {"drifted" if drifted else "stable"}"><h2>{escape(name)}</h2>'
        f'<p>PSI <b>{shown}</b> · <span class="verdict">{verdict}</span> · {escape(note)}</p>{chart}</section>'
    )


def render(report: dict[str, Any]) -> str:
    scores = report["scores"]
    sections = []
    for feature in scores["features"]:
        chart = bar_chart(
            feature["name"],
            _bin_labels(feature["edges"]),
            feature["baseline_counts"],
            feature["live_counts"],
            feature["drifted"],
        )
        note = f"mean {feature['baseline_mean']:.3g} in training, " + (
            f"{feature['live_mean']:.3g} live" if feature["live_mean"] is not None else "no live values"
        )
        sections.append(_section(feature["name"], feature["psi"], feature["drifted"], chart, note))
    prediction = scores.get("prediction")
    if prediction:
        chart = bar_chart(
            "predictions",
            prediction["classes"] if "classes" in prediction else _bin_labels(prediction["edges"]),
            prediction["baseline_counts"],
            prediction["live_counts"],
            prediction["drifted"],
        )
        sections.append(
            _section(
                "predictions",
                prediction["psi"],
                prediction["drifted"],
                chart,
                "training labels vs live answers"
                if "classes" in prediction
                else "training target vs live answers",
            )
        )
    drifted = ", ".join(scores["drifted"]) or "none"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report: {escape(report["endpoint"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #1f2933; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 1rem; }}
section {{ border: 1px solid #d9e2ec; border-radius: 6px; padding: 0.5rem 0.8rem; }}
section.drifted {{ border-color: {DRIFT_COLOUR}; }} .drifted .verdict {{ color: {DRIFT_COLOUR}; font-weight: bold; }}
h2 {{ font-size: 1rem; margin: 0.2rem 0; }} p {{ margin: 0.2rem 0; font-size: 0.85rem; }}
.key span {{ display: inline-block; width: 0.8rem; height: 0.8rem; margin: 0 0.3rem 0 0.8rem; }}
</style></head><body>
<h1>Drift report: {escape(report["endpoint"])}</h1>
<p>{escape(report["window"]["start"])} to {escape(report["window"]["end"])} · {scores["rows"]} live rows from
{report["capture"]["objects"]} capture files · population stability index per feature, threshold
{scores["threshold"]:g} · drifted: <b>{escape(drifted)}</b></p>
<p class="key"><span style="background:{BASELINE_COLOUR}"></span>training data
<span style="background:{LIVE_COLOUR}"></span>live<span style="background:{DRIFT_COLOUR}"></span>live, drifted</p>
<div class="grid">{"".join(sections)}</div>
</body></html>
"""
