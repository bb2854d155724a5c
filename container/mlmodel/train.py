"""`train`: fit the chosen model slot (mlmodel/models/) on the training channel; write it and metadata.json.

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

from mlmodel.baseline import baseline_of
from mlmodel.checkpoints import CheckpointStore, fingerprint_of
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
from mlmodel.dataset import DataError, load_channel
from mlmodel.models import feature_names_for, slot_for_training

log = logging.getLogger("mlmodel.train")
VALIDATION_CHANNEL = "validation"
CSV_CONTENT_TYPES = ("text/csv", "text/csv;label_size=1", "")
MAX_FAILURE_CHARS = 1024  # SageMaker's FailureReason limit


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


def validate(slot: Any, model: Any, paths: Paths, n_features: int) -> dict[str, Any] | None:
    if not paths.channel_dir(VALIDATION_CHANNEL).is_dir():
        return None
    return slot.validation_metrics(model, load_channel(paths.channel_dir(VALIDATION_CHANNEL), n_features))


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
    }


def fit_with_checkpoints(slot: Any, data: Any, params: dict[str, Any], paths: Paths) -> tuple[Any, dict]:
    """The fitted model and its training metrics, each finished step checkpointed: the slot's fit steps, then
    the training metrics (their cross-validation refits the model per fold). A restarted job resumes after
    the last step its checkpoints hold."""
    fit_steps = slot.fit_steps(params) if hasattr(slot, "fit_steps") else 1
    total = fit_steps + 1
    store = CheckpointStore(
        paths.checkpoint_dir,
        fingerprint_of(
            model=slot.name,
            hyperparameters=params,
            features=data.features.tobytes(),
            labels="\n".join(map(str, data.labels)),
            shape=list(data.features.shape),
            versions=versions(),
            steps=total,
        ),
    )
    state: dict[str, Any] = {"model": None, "training": None}
    step = 0
    if resumed := store.latest(total):
        step, state = resumed.step, resumed.state
        log.info("resumed from checkpoint: step %d of %d (%s)", step, total, resumed.path.name)
    while step < fit_steps:
        step += 1
        if hasattr(slot, "fit_step"):
            state = {"model": slot.fit_step(state["model"], data, params, step), "training": None}
        else:
            state = {"model": slot.fit(data, params), "training": None}
        log.info("checkpoint: step %d of %d (fitted) in %s", step, total, store.save(step, total, state).name)
    if step < total:
        state = {**state, "training": slot.training_metrics(state["model"], data, params)}
        log.info(
            "checkpoint: step %d of %d (training metrics) in %s",
            total,
            total,
            store.save(total, total, state).name,
        )
    return state["model"], state["training"]


def train(paths: Paths) -> dict[str, Any]:
    started = time.monotonic()
    slot = slot_for_training()
    raw = read_json(paths.hyperparameters_file, "the hyperparameters file") or {}
    if not isinstance(raw, dict):
        raise UserError(f"the hyperparameters file {paths.hyperparameters_file} must hold a JSON object")
    params = slot.parse_hyperparameters(raw)
    log.info("model %s (%s), hyperparameters: %s", slot.name, slot.problem_type, json.dumps(params))
    check_channel_content_type(paths)
    data = load_channel(paths.channel_dir(TRAINING_CHANNEL))
    log.info("read %d rows of %d features from %s", data.labels.size, data.n_features, ", ".join(data.files))
    model, training = fit_with_checkpoints(slot, data, params, paths)
    log.info("training metrics: %s", json.dumps(training))
    validation = validate(slot, model, paths, data.n_features)
    if validation:
        log.info("validation metrics: %s", json.dumps(validation))
    feature_names = feature_names_for(slot.feature_names, data.n_features)
    metadata = {  # the schema: mlmodel/contract.py
        "model_file": MODEL_FILE,
        "model": slot.name,
        "problem_type": slot.problem_type,
        **slot.describe(model),
        "feature_names": feature_names,
        "n_features": data.n_features,
        "hyperparameters": params,
        "metrics": {"training": training, **({"validation": validation} if validation else {})},
        "training_files": list(data.files),
        "baseline": baseline_of(data.features, data.labels, feature_names, slot.problem_type),
        "versions": versions(),
        "training_seconds": round(time.monotonic() - started, 3),
    }
    paths.model_dir.mkdir(parents=True, exist_ok=True)
    slot.save(model, paths.model_dir)
    (paths.model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    log.info("wrote the model and %s to %s", METADATA_FILE, paths.model_dir)
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
    if who := drop_privileges(
        writable=(paths.model_dir, paths.output_dir, paths.checkpoint_dir),
        readable=(paths.base / "input", paths.checkpoint_dir),
    ):
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
