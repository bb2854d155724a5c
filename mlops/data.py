"""The examples' data the pipeline trains and evaluates on: the copies that ship inside scikit-learn.

They are read straight from scikit-learn's data folder with numpy, so preparing data costs no scikit-learn
import (seconds on a small machine). Each example's split is seeded (iris's stratified by class): every run
writes the same files, label first, no header, one row per line.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SEED = 20240521


# example -> a row of features to ask the inference API about (what the README's curl sends)
EXAMPLES = ("iris", "diabetes")
SAMPLE_ROWS = {"iris": "4.5,1.3,0.3,0.3", "diabetes": "59,2,32.1,101,157,93.2,38,4,4.8598,87"}


def sklearn_data_file(name: str) -> Path:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"scikit-learn is not installed, and its copy of {name} comes with it")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name


def iris_csv() -> Path:
    return sklearn_data_file("iris.csv")


def load_diabetes_rows() -> tuple[np.ndarray, np.ndarray]:
    """(features float64 (442, 10) unscaled: age, sex, bmi, bp, s1..s6; disease progression (442,))."""
    features = np.loadtxt(sklearn_data_file("diabetes_data_raw.csv.gz"))
    target = np.loadtxt(sklearn_data_file("diabetes_target.csv.gz"))
    return features, target


def random_split(n_rows: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test) from a seeded shuffle: a regression has no classes to stratify by."""
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1, got {test_size}")
    rows = np.random.default_rng(seed).permutation(n_rows)
    n_test = max(1, round(n_rows * test_size))
    return rows[n_test:], rows[:n_test]


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
    return _write(out_dir, features, labels.astype(str), *stratified_split(labels, test_size, seed))


def write_diabetes_split(out_dir: str | Path, test_size: float = 0.2, seed: int = SEED) -> tuple[Path, Path]:
    """The diabetes example as ``train.csv`` and ``test.csv``: the target first, then the 10 features."""
    features, target = load_diabetes_rows()
    labels = np.array([f"{value:g}" for value in target])
    return _write(out_dir, features, labels, *random_split(len(target), test_size, seed))


def write_split(
    example: str, out_dir: str | Path, test_size: float = 0.2, seed: int = SEED
) -> tuple[Path, Path]:
    writers = {"iris": write_iris_split, "diabetes": write_diabetes_split}
    if example not in writers:
        raise ValueError(f"unknown example {example!r}: choose {' or '.join(writers)}")
    return writers[example](out_dir, test_size, seed)


def _write(
    out_dir: str | Path,
    features: np.ndarray,
    labels: np.ndarray,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "train.csv", out / "test.csv")
    for path, rows in zip(paths, (train_rows, test_rows), strict=True):
        lines = (",".join([str(labels[i]), *(f"{v:g}" for v in features[i])]) for i in rows)
        path.write_text("\n".join(lines) + "\n")
    return paths
