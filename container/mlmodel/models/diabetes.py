"""The diabetes example: gradient boosting regression of disease progression a year after baseline, on
scikit-learn's bundled diabetes data (10 features, unscaled). The server answers one number per row."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.model_selection import KFold, cross_val_score

from mlmodel.contract import MODEL_FILE, REGRESSION, UserError
from mlmodel.dataset import DataError, LabelledData
from mlmodel.hyperparameters import RESERVED_PREFIXES, HyperparameterError, _as_text
from mlmodel.payload import JSON

CV_FOLDS = 5
# The boosting rounds are fitted in this many chunks (warm start), each one a checkpoint `train` can resume
# from; the stages and their random draws are the same as in one fit.
FIT_CHUNKS = 5


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)  # ValueError for anything else
        if not low <= value <= high:
            raise ValueError
        return value

    return parse


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise ValueError
    return value


# name -> (parser, what a valid value is, default)
HYPERPARAMETERS: dict[str, tuple[Callable[[str], Any], str, Any]] = {
    "n_estimators": (_bounded_int(1, 5000), "must be an integer from 1 to 5000", 200),
    "learning_rate": (_fraction, "must be a number in (0, 1]", 0.05),
    "max_depth": (_bounded_int(1, 32), "must be an integer from 1 to 32", 3),
    "min_samples_leaf": (_bounded_int(1, 10_000), "must be a positive integer", 5),
    "subsample": (_fraction, "must be a number in (0, 1]", 0.8),
    "random_state": (_bounded_int(0, 2**32 - 1), "must be an integer from 0 to 4294967295", 0),
}


def metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    error = predicted - truth
    spread = float(((truth - truth.mean()) ** 2).sum())
    return {
        "rows": int(truth.size),
        "rmse": float(np.sqrt((error**2).mean())),
        "mae": float(np.abs(error).mean()),
        "r2": 1.0 - float((error**2).sum()) / spread if spread else 0.0,
    }


def targets(data: LabelledData) -> np.ndarray:
    """The label column as numbers: a regression's label is the target value."""
    try:
        values = data.labels.astype(np.float64)
    except ValueError:
        bad = next(label for label in data.labels if not _is_number(label))
        raise DataError(f"the label {bad[:24]!r} is not a number: this model predicts a number") from None
    if not np.isfinite(values).all():
        raise DataError("the labels must be finite numbers")
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class DiabetesRegressor:
    name = "diabetes"
    problem_type = REGRESSION
    feature_names = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
    target = "disease_progression"
    estimator = "sklearn.ensemble.GradientBoostingRegressor"

    def parse_hyperparameters(self, raw: Mapping[str, object]) -> dict[str, Any]:
        params = {name: default for name, (_, _, default) in HYPERPARAMETERS.items()}
        for name, value in raw.items():
            if name.startswith(RESERVED_PREFIXES):
                continue
            if name not in HYPERPARAMETERS:
                raise UserError(
                    f"unknown hyperparameter {name!r}: the supported ones are {', '.join(HYPERPARAMETERS)}"
                )
            parser, what, _ = HYPERPARAMETERS[name]
            text = _as_text(value)
            try:
                params[name] = parser(text)
            except ValueError:
                raise HyperparameterError(name, text, what) from None
        return params

    def fit(self, data: LabelledData, params: dict[str, Any]) -> GradientBoostingRegressor:
        model = None
        for step in range(1, self.fit_steps(params) + 1):
            model = self.fit_step(model, data, params, step)
        return model

    def fit_steps(self, params: dict[str, Any]) -> int:
        return min(FIT_CHUNKS, params["n_estimators"])

    def fit_step(
        self, model: GradientBoostingRegressor | None, data: LabelledData, params: dict[str, Any], step: int
    ) -> GradientBoostingRegressor:
        """Boosting rounds up to this step's share of n_estimators, continuing `model`'s (warm start)."""
        y = targets(data)
        if y.size < 2:
            raise DataError(f"the training data has {y.size} row: at least two are needed")
        steps = self.fit_steps(params)
        rounds = params["n_estimators"] * step // steps
        if model is None:
            model = GradientBoostingRegressor(**params, warm_start=True)
        model.set_params(n_estimators=rounds, warm_start=True)
        model.fit(data.features, y)
        if step == steps:
            model.set_params(warm_start=False)  # the artifact is an ordinary fitted regressor
        return model

    def training_metrics(
        self, model: GradientBoostingRegressor, data: LabelledData, params: dict[str, Any]
    ) -> dict[str, Any]:
        y = targets(data)
        result = metrics(y, model.predict(data.features))
        folds = min(CV_FOLDS, y.size)
        if folds >= 2:
            cv = KFold(n_splits=folds, shuffle=True, random_state=params["random_state"])
            scores = cross_val_score(
                GradientBoostingRegressor(**params),
                data.features,
                y,
                cv=cv,
                scoring="neg_root_mean_squared_error",
            )
            result["cross_validation"] = {
                "folds": folds,
                "rmse": float(-scores.mean()),
                "std": float(scores.std()),
            }
        return result

    def validation_metrics(self, model: GradientBoostingRegressor, data: LabelledData) -> dict[str, Any]:
        return metrics(targets(data), model.predict(data.features))

    def describe(self, model: GradientBoostingRegressor) -> dict[str, Any]:
        return {"estimator": self.estimator, "target": self.target}

    def save(self, model: GradientBoostingRegressor, model_dir: Path) -> None:
        joblib.dump(model, Path(model_dir) / MODEL_FILE)

    def load(self, model_dir: Path, metadata: dict[str, Any]) -> ServedRegressor:
        return ServedRegressor(joblib.load(Path(model_dir) / MODEL_FILE), metadata)


class ServedRegressor:
    def __init__(self, estimator: GradientBoostingRegressor, metadata: dict[str, Any]):
        self.estimator = estimator
        self.n_features = int(estimator.n_features_in_)
        self.target = metadata.get("target", "value")

    def describe(self) -> str:
        return f"a regressor of {self.target}, {self.n_features} features"

    def predict(self, rows: np.ndarray) -> list[float]:
        # Seven significant digits: the figures a person reads, identical in CSV and JSON.
        return [float(f"{value:.7g}") for value in self.estimator.predict(rows)]

    def answer(self, rows: np.ndarray, media_type: str) -> bytes:
        values = self.predict(rows)
        if media_type == JSON:
            return json.dumps(values).encode()
        return "\n".join(repr(value) for value in values).encode()


SLOT = DiabetesRegressor()
