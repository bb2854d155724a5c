"""What the benchmark scores: the pipeline's model trained on iris, and iris-like rows in any number."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mlmodel import contract

from mlops.data import write_iris_split
from mlops.local.runners import ProcessRunner

SEED = 7
SAMPLE_ROW = b"4.5,1.3,0.3,0.3"
SAMPLE_LABEL = b"setosa"


def train_model(base: Path) -> Path:
    """Trains with the container's `train` program (default hyperparameters); returns the model directory."""
    paths = contract.Paths(base)
    train_csv, _ = write_iris_split(paths.channel_dir(contract.TRAINING_CHANNEL))
    # The held-out file stays out of the training channel, as in the pipeline.
    (train_csv.parent / "test.csv").unlink()
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.hyperparameters_file.write_text("{}")
    code = ProcessRunner().train("local", base, base / "train.log")
    if code != 0:
        raise RuntimeError(f"train exited with {code}: {(base / 'train.log').read_text()[-2000:]}")
    return paths.model_dir


def iris_like_rows(count: int, seed: int = SEED) -> bytes:
    """`count` lines of 4 features like `5.1,3.5,1.4,0.2`: iris rows with noise, one decimal, no label."""
    from sklearn.datasets import load_iris

    rng = np.random.default_rng(seed)
    iris = load_iris().data
    tenths = np.rint(iris[rng.integers(0, len(iris), count)] * 10 + rng.normal(0, 2.0, (count, 4)))
    tenths = np.clip(tenths, 1, 99).astype(np.intp)
    tokens = np.array([f"{i // 10}.{i % 10}" for i in range(100)], dtype=object)
    fields = tokens[tenths]
    return "\n".join(map(",".join, fields.tolist())).encode() + b"\n"
