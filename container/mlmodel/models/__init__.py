"""Model slots: what a model is to the rest of the container, and which ones this image holds.

A slot is a module with a `SLOT` object offering, for `train`:
    name, problem_type ("classification" | "regression"), feature_names (CSV column order), target
    parse_hyperparameters(raw: {name: str}) -> dict          each value checked, UserError naming a bad one
    fit(data: LabelledData, params) -> fitted                 UserError for data it cannot learn from
    training_metrics(fitted, data, params) -> dict            metadata.json's metrics.training
    validation_metrics(fitted, data) -> dict                  metrics.validation (a "validation" channel)
    describe(fitted) -> dict                                  slot-specific metadata (classes, estimator, ...)
    save(fitted, model_dir)                                   the artifact files next to metadata.json
optionally, to fit in steps `train` checkpoints (a restarted job resumes after the last finished one; without
them the whole fit is one step):
    fit_steps(params) -> int                                  how many steps the fit takes
    fit_step(partial, data, params, step) -> partial          step 1..fit_steps (partial is None at 1); the
                                                              last step's result is the fitted model; each
                                                              result must pickle, and resuming from it must
                                                              give the model an uninterrupted fit gives
and, for `serve`, load(model_dir, metadata) -> a served model with `n_features`, `answer(rows, media_type)`
(the response body for a float64 array of rows, CSV or JSON) and `describe()` for the log.
Everything else (the SageMaker contract, /ping, /invocations, limits, errors, signals, batch) is shared.
To add a model: a module here and a line in SLOTS (see docs/model-image.md).
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlmodel.contract import DEFAULT_MODEL, METADATA_FILE, MODEL_ENV, UserError

# slot name -> module (imported only when chosen: serving iris never imports scikit-learn)
SLOTS = {"iris": "mlmodel.models.iris", "diabetes": "mlmodel.models.diabetes"}


def slot_named(name: str) -> Any:
    module = SLOTS.get(name)
    if module is None:
        raise UserError(f"unknown model {name!r} ({MODEL_ENV}): this image holds {', '.join(SLOTS)}")
    return importlib.import_module(module).SLOT


def slot_for_training(environ: Mapping[str, str] | None = None) -> Any:
    environ = os.environ if environ is None else environ
    return slot_named(environ.get(MODEL_ENV, "").strip() or DEFAULT_MODEL)


def read_metadata(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / METADATA_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def load_served_model(model_dir: Path) -> Any:
    """The model serve answers with: the slot metadata.json names (an artifact without one: iris's tree)."""
    metadata = read_metadata(model_dir)
    return slot_named(metadata.get("model") or DEFAULT_MODEL).load(Path(model_dir), metadata)


def feature_names_for(default: tuple[str, ...], n_features: int) -> list[str]:
    """The example's column names when the data has that many columns, else x1..xN."""
    return list(default) if len(default) == n_features else [f"x{i}" for i in range(1, n_features + 1)]
