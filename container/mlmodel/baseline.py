"""The training data's baseline: what a drift check compares live inputs and predictions against.

Per feature: bin edges at the training data's quantiles and the rows per bin (the first and last bins are
open-ended, so a live value outside the training range still lands in a bin), mean, standard deviation,
range, quantiles and missing values; for the label, each class's share. Quantile bins hold about the same
number of training rows each, so no bin of the population stability index is nearly empty (where the index
would be dominated by noise). Everything is plain JSON, so a check without numpy can read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_BINS = 4
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def feature_baseline(values: np.ndarray, name: str, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """One feature's statistics; NaN counts as missing. ``edges`` are the inner edges: a value v falls in bin
    ``bisect_right(edges, v)``, so ``counts`` has ``len(edges) + 1`` entries."""
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    missing = int(values.size - present.size)
    if present.size == 0:
        return {"name": name, "count": 0, "missing": missing, "edges": [], "counts": [0]}
    inner = np.quantile(present, np.arange(1, bins) / bins)
    # A feature with few distinct values repeats edges; an edge at the minimum would leave the first bin empty.
    edges = sorted({float(edge) for edge in inner if edge > present.min()})
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    return {
        "name": name,
        "count": int(present.size),
        "missing": missing,
        "mean": float(present.mean()),
        "std": float(present.std()),
        "min": float(present.min()),
        "max": float(present.max()),
        "quantiles": {f"p{round(q * 100):02d}": float(np.quantile(present, q)) for q in QUANTILES},
        "edges": edges,
        "counts": [int(c) for c in counts],
    }


def label_baseline(labels: np.ndarray, problem_type: str = "classification") -> dict[str, Any]:
    """Each class's count; for a regression, the target's statistics and bins as for a feature."""
    if problem_type == "regression":
        return {"kind": "numeric", **feature_baseline(np.asarray(labels, dtype=np.float64), "target")}
    classes, counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)
    return {
        "kind": "classes",
        "count": int(counts.sum()),
        "counts": {str(c): int(n) for c, n in zip(classes, counts, strict=True)},
    }


def baseline_of(
    features: np.ndarray,
    labels: np.ndarray,
    feature_names: Sequence[str] | None = None,
    problem_type: str = "classification",
    bins: int = DEFAULT_BINS,
) -> dict[str, Any]:
    """The metadata's ``baseline``: every feature column of ``features`` (rows, n) and the labels."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be a (rows, columns) table, got shape {features.shape}")
    n_features = features.shape[1]
    names = list(feature_names) if feature_names else [f"feature_{i}" for i in range(1, n_features + 1)]
    if len(names) != n_features:
        raise ValueError(f"feature_names has {len(names)} names for {n_features} feature columns")
    return {
        "rows": int(features.shape[0]),
        "bins": bins,
        "features": [feature_baseline(features[:, i], names[i], bins) for i in range(n_features)],
        "label": label_baseline(labels, problem_type),
    }
