"""The iris data the pipeline trains and evaluates on: the copy that ships inside scikit-learn, no download.

It is read straight from scikit-learn's data folder with numpy, so preparing data costs no scikit-learn
import (seconds on a small machine). The split is stratified and seeded: every run writes the same files.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SEED = 20240521


def iris_csv() -> Path:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-learn is not installed, and its copy of the iris data comes with it")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "iris.csv"


def load_iris_rows() -> tuple[np.ndarray, np.ndarray]:
    """(features float64 (150, 4), class names (150,))."""
    lines = iris_csv().read_text().splitlines()
    _, _, *names = lines[0].split(",")  # header: n_samples, n_features, class names
    table = np.array([line.split(",") for line in lines[1:] if line], dtype=np.float64)
    return table[:, :-1], np.asarray(names)[table[:, -1].astype(int)]


def stratified_split(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test): each class keeps its share in both, chosen by a seeded shuffle."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1, got {test_size}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        n_test = max(1, round(len(rows) * test_size))
        test.extend(rows[:n_test])
        train.extend(rows[n_test:])
    return rng.permutation(train), rng.permutation(test)


def write_iris_split(out_dir: str | Path, test_size: float = 0.2, seed: int = SEED) -> tuple[Path, Path]:
    """Writes ``train.csv`` and held-out ``test.csv`` (label first, no header) and returns their paths."""
    features, labels = load_iris_rows()
    train_rows, test_rows = stratified_split(labels, test_size, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "train.csv", out / "test.csv")
    for path, rows in zip(paths, (train_rows, test_rows), strict=True):
        lines = (",".join([str(labels[i]), *(f"{v:g}" for v in features[i])]) for i in rows)
        path.write_text("\n".join(lines) + "\n")
    return paths
