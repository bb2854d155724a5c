"""`train`: fit a decision tree on the training channel and write the model and its metadata.

On failure SageMaker shows the first line of /opt/ml/output/failure as the job's FailureReason, so the
reason goes there in one paragraph; the exit code says whether the caller can fix it (see contract).
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.tree import DecisionTreeClassifier

from mlmodel.baseline import baseline_of
from mlmodel.contract import (
    EXIT_OK,
    EXIT_UNEXPECTED,
    EXIT_USER_ERROR,
    METADATA_FILE,
    MODEL_FILE,
    TRAINING_CHANNEL,
    Paths,
    UserError,
    drop_privileges,
)
from mlmodel.dataset import DataError, LabelledData, load_channel
from mlmodel.hyperparameters import parse_hyperparameters
from mlmodel.model import TreeModel

log = logging.getLogger("mlmodel.train")
VALIDATION_CHANNEL = "validation"
CSV_CONTENT_TYPES = ("text/csv", "text/csv;label_size=1", "")
MAX_FAILURE_CHARS = 1024  # SageMaker's FailureReason limit
CV_FOLDS = 5


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise UserError(f"{what} {path} is not valid JSON: {error}") from None


def check_channel_content_type(paths: Paths) -> None:
    config = read_json(paths.input_data_config_file, "the input data configuration") or {}
    channel = config.get(TRAINING_CHANNEL) or {}
    content_type = str(channel.get("ContentType", "")).replace(" ", "").lower()
    if content_type not in CSV_CONTENT_TYPES:
        raise DataError(
            f"the {TRAINING_CHANNEL!r} channel's ContentType is {content_type!r}: only text/csv is read"
        )


def fit(data: LabelledData, params: dict[str, Any]) -> DecisionTreeClassifier:
    classes = np.unique(data.labels)
    if classes.size < 2:
        raise DataError(f"the training data has a single class {str(classes[0])!r}: at least two are needed")
    model = DecisionTreeClassifier(**params)
    try:
        model.fit(data.features, data.labels)
    except ValueError as error:  # e.g. a fraction leaving fewer samples than a split needs
        raise UserError(f"the tree cannot be fitted with these hyperparameters: {error}") from None
    return model


def metrics(model: DecisionTreeClassifier, data: LabelledData, params: dict[str, Any]) -> dict[str, Any]:
    labels, counts = np.unique(data.labels, return_counts=True)
    result: dict[str, Any] = {
        "rows": int(data.labels.size),
        "class_counts": {str(label): int(count) for label, count in zip(labels, counts, strict=True)},
        "training_accuracy": float(model.score(data.features, data.labels)),
        "tree_depth": int(model.get_depth()),
        "tree_leaves": int(model.get_n_leaves()),
    }
    folds = min(CV_FOLDS, int(counts.min()))
    if folds >= 2:
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=params["random_state"] or 0)
        scores = cross_val_score(DecisionTreeClassifier(**params), data.features, data.labels, cv=cv)
        result["cross_validation"] = {
            "folds": folds,
            "accuracy": float(scores.mean()),
            "std": float(scores.std()),
        }
    return result


def validate(model: DecisionTreeClassifier, paths: Paths, n_features: int) -> dict[str, Any] | None:
    if not paths.channel_dir(VALIDATION_CHANNEL).is_dir():
        return None
    data = load_channel(paths.channel_dir(VALIDATION_CHANNEL), n_features)
    unknown = sorted(set(data.labels) - set(model.classes_))
    if unknown:
        raise DataError(f"the validation data has classes the training data lacks: {', '.join(unknown)}")
    return {"rows": int(data.labels.size), "accuracy": float(model.score(data.features, data.labels))}


def train(paths: Paths) -> dict[str, Any]:
    started = time.monotonic()
    raw = read_json(paths.hyperparameters_file, "the hyperparameters file") or {}
    if not isinstance(raw, dict):
        raise UserError(f"the hyperparameters file {paths.hyperparameters_file} must hold a JSON object")
    params = parse_hyperparameters(raw)
    log.info("hyperparameters: %s", json.dumps(params))
    check_channel_content_type(paths)
    data = load_channel(paths.channel_dir(TRAINING_CHANNEL))
    log.info("read %d rows of %d features from %s", data.labels.size, data.n_features, ", ".join(data.files))
    model = fit(data, params)
    training = metrics(model, data, params)
    log.info("training metrics: %s", json.dumps(training))
    validation = validate(model, paths, data.n_features)
    if validation:
        log.info("validation metrics: %s", json.dumps(validation))
    metadata = {
        "model_file": MODEL_FILE,
        "estimator": "sklearn.tree.DecisionTreeClassifier",
        "classes": [str(label) for label in model.classes_],
        "n_features": data.n_features,
        "hyperparameters": params,
        "metrics": {"training": training, **({"validation": validation} if validation else {})},
        "training_files": list(data.files),
        "baseline": baseline_of(data.features, data.labels),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "joblib": joblib.__version__,
        },
        "training_seconds": round(time.monotonic() - started, 3),
    }
    paths.model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, paths.model_dir / MODEL_FILE)
    TreeModel(model).save_tree(paths.model_dir)
    (paths.model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    log.info("wrote %s and %s to %s", MODEL_FILE, METADATA_FILE, paths.model_dir)
    return metadata


def write_failure(paths: Paths, reason: str) -> None:
    try:
        paths.output_dir.mkdir(parents=True, exist_ok=True)
        paths.failure_file.write_text(" ".join(reason.split())[:MAX_FAILURE_CHARS] + "\n")
    except OSError as error:
        log.error("could not write %s: %s", paths.failure_file, error)


def main() -> int:
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    paths = Paths.from_env()
    if who := drop_privileges(writable=(paths.model_dir, paths.output_dir), readable=(paths.base / "input",)):
        log.info("%s", who)
    log.info("training with SageMaker base directory %s", paths.base)
    try:
        train(paths)
    except UserError as error:
        log.error("training failed: %s", error)
        write_failure(paths, f"Training failed: {error}")
        return EXIT_USER_ERROR
    except Exception as error:
        log.error("training failed unexpectedly:\n%s", traceback.format_exc())
        write_failure(paths, f"Training failed unexpectedly: {type(error).__name__}: {error}")
        return EXIT_UNEXPECTED
    log.info("training complete")
    return EXIT_OK
