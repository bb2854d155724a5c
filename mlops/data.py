"""The iris data the pipeline trains and evaluates on: the copy that ships inside scikit-learn, no download."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 20261125


def write_iris_split(out_dir: Path, test_size: float = 0.2, seed: int = SEED) -> tuple[Path, Path]:
    """Writes ``train.csv`` and held-out ``test.csv`` (label first, no header), stratified by class."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    iris = load_iris()
    labels = np.asarray(iris.target_names)[iris.target]
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, labels, test_size=test_size, stratify=labels, random_state=seed
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, features, target in (("train.csv", x_train, y_train), ("test.csv", x_test, y_test)):
        path = out_dir / name
        rows = (
            f"{label}," + ",".join(f"{v:g}" for v in row) for label, row in zip(target, features, strict=True)
        )
        path.write_text("\n".join(rows) + "\n")
        paths.append(path)
    return paths[0], paths[1]
