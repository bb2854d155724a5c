"""Drift scores of live inputs and predictions against the training data's baseline (train's metadata.json).

The score is the population stability index (PSI) over the baseline's own bins:
PSI = Σ (live share - baseline share) · ln(live share / baseline share).
Why PSI and not Kolmogorov-Smirnov: the baseline keeps bins and counts, not the training rows, and PSI is
exactly defined on bins while KS would need the full training distribution; PSI does not grow with the number
of live rows (a KS p-value flags tiny, harmless shifts once traffic is large), it scores categorical outputs
(the predicted classes) the same way as numeric features, and its usual reading is well known: below 0.1 no
change, 0.1 to 0.25 some, above 0.25 a shift worth a look (the template's default threshold).
"""

from __future__ import annotations

import base64
import json
import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

FLOOR = 1e-4  # an empty bin's share: ln(0) is undefined, and one empty bin must not make the score infinite


class DriftError(ValueError):
    """The captures or the baseline cannot be scored; the message names what is wrong."""


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """PSI of two count vectors over the same bins (counts, not shares)."""
    if len(expected) != len(actual):
        raise DriftError(f"bins differ: {len(expected)} baseline bins, {len(actual)} live bins")
    e_total, a_total = sum(expected), sum(actual)
    if e_total <= 0 or a_total <= 0:
        return 0.0
    score = 0.0
    for e, a in zip(expected, actual, strict=True):
        e_share, a_share = max(e / e_total, FLOOR), max(a / a_total, FLOOR)
        score += (a_share - e_share) * math.log(a_share / e_share)
    return score


def bin_counts(edges: Sequence[float], values: Iterable[float]) -> list[int]:
    """Counts per bin, as the baseline binned the training data (value v in bin bisect_right(edges, v))."""
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[bisect_right(edges, value)] += 1
    return counts


@dataclass
class LiveData:
    """The rows and predictions read from capture files."""

    rows: list[list[float | None]] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)
    records: int = 0
    skipped: int = 0  # records whose input was not CSV of the expected width


def _text(part: dict[str, Any]) -> str:
    data = part.get("data", "")
    if part.get("encoding") == "BASE64":
        return base64.b64decode(data).decode("utf-8", "replace")
    return data


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _answers(output: dict[str, Any]) -> list[str]:
    """The predictions of a captured answer: CSV lines, or a JSON list (or {"predictions": [...]})."""
    if not output:
        return []
    text = _text(output)
    if output.get("encoding") == "JSON" or output.get("observedContentType", "").startswith(
        "application/json"
    ):
        try:
            parsed = json.loads(text)
        except ValueError:
            return []
        if isinstance(parsed, dict):
            parsed = parsed.get("predictions", [])
        if not isinstance(parsed, list):
            parsed = [parsed]
        return [str(item[0] if isinstance(item, list) and len(item) == 1 else item) for item in parsed]
    return [a.strip() for a in text.splitlines() if a.strip()]


def read_captures(lines: Iterable[str], n_features: int, live: LiveData | None = None) -> LiveData:
    """Adds the CSV rows (and their CSV predictions) of SageMaker capture lines to ``live``."""
    live = live or LiveData()
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            data = record["captureData"]
        except (ValueError, KeyError, TypeError):
            live.skipped += 1
            continue
        live.records += 1
        source = data.get("endpointInput") or {}
        if source.get("encoding") not in ("CSV", "BASE64"):
            live.skipped += 1
            continue
        rows = [row for row in _text(source).splitlines() if row.strip()]
        parsed = [[_number(v.strip()) for v in row.split(",")] for row in rows]
        if not parsed or any(len(row) != n_features for row in parsed):
            live.skipped += 1
            continue
        live.rows.extend(parsed)
        answers = _answers(data.get("endpointOutput") or {})
        if len(answers) == len(parsed):
            live.predictions.extend(answers)
    return live


def feature_names(baseline: dict[str, Any], names: Sequence[str] = ()) -> list[str]:
    """The names to report: ``names`` when given (one per feature), else the baseline's."""
    features = baseline.get("features") or []
    if names:
        if len(names) != len(features):
            raise DriftError(
                f"{len(names)} feature names were given for the baseline's {len(features)} features"
            )
        return list(names)
    return [f.get("name") or f"feature_{i}" for i, f in enumerate(features, start=1)]


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


def score(baseline: dict[str, Any], live: LiveData, threshold: float, names: Sequence[str] = ()) -> dict:
    """Per-feature PSI, the predictions' PSI against the training labels, and which crossed ``threshold``."""
    if not isinstance(baseline, dict) or not baseline.get("features"):
        raise DriftError("the baseline has no features: the model's metadata.json needs train's baseline")
    labels = feature_names(baseline, names)
    features = []
    for column, (stats, name) in enumerate(zip(baseline["features"], labels, strict=True)):
        values = [row[column] for row in live.rows if row[column] is not None]
        counts = bin_counts(stats["edges"], values)
        value = psi(stats["counts"], counts) if values else None
        features.append(
            {
                "name": name,
                "psi": None if value is None else round(value, 4),
                "drifted": value is not None and value > threshold,
                "rows": len(values),
                "missing": len(live.rows) - len(values),
                "live_mean": round(sum(values) / len(values), 4) if values else None,
                "baseline_mean": stats.get("mean"),
                "edges": stats["edges"],
                "baseline_counts": stats["counts"],
                "live_counts": counts,
            }
        )
    prediction = None
    label = baseline.get("label") or {}
    if label.get("kind") == "classes" and live.predictions:
        classes = sorted(set(label["counts"]) | set(live.predictions))
        seen = Counter(live.predictions)
        expected = [label["counts"].get(c, 0) for c in classes]
        actual = [seen.get(c, 0) for c in classes]
        value = psi(expected, actual)
        prediction = {
            "psi": round(value, 4),
            "drifted": value > threshold,
            "classes": classes,
            "baseline_counts": expected,
            "live_counts": actual,
        }
    if (
        label.get("kind") == "numeric" and live.predictions
    ):  # a regression: its answers against the target's bins
        numbers = [n for n in (_number(p) for p in live.predictions) if n is not None]
        if numbers:
            actual = bin_counts(label["edges"], numbers)
            value = psi(label["counts"], actual)
            prediction = {
                "psi": round(value, 4),
                "drifted": value > threshold,
                "edges": label["edges"],
                "baseline_counts": label["counts"],
                "live_counts": actual,
                "live_mean": round(sum(numbers) / len(numbers), 4),
                "baseline_mean": label.get("mean"),
            }
    return {
        "threshold": threshold,
        "rows": len(live.rows),
        "records": live.records,
        "skipped": live.skipped,
        "features": features,
        "prediction": prediction,
        "drifted": [f["name"] for f in features if f["drifted"]],
    }
