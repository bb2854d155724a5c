"""The iris example: a decision tree classifier. Its serving fast paths (mlmodel.model.TreeModel: a tree as
arrays, an outcome table for small trees, no scikit-learn import) are this model's optimisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.tree import DecisionTreeClassifier

from mlmodel.contract import CLASSIFICATION, MODEL_FILE, UserError
from mlmodel.dataset import DataError, LabelledData
from mlmodel.hyperparameters import parse_hyperparameters
from mlmodel.model import TreeModel

CV_FOLDS = 5


class IrisTree:
    name = "iris"
    problem_type = CLASSIFICATION
    feature_names = ("sepal_length", "sepal_width", "petal_length", "petal_width")
    target = "species"
    estimator = "sklearn.tree.DecisionTreeClassifier"

    parse_hyperparameters = staticmethod(parse_hyperparameters)

    def fit(self, data: LabelledData, params: dict[str, Any]) -> DecisionTreeClassifier:
        classes = np.unique(data.labels)
        if classes.size < 2:
            raise DataError(
                f"the training data has a single class {str(classes[0])!r}: at least two are needed"
            )
        model = DecisionTreeClassifier(**params)
        try:
            model.fit(data.features, data.labels)
        except ValueError as error:  # e.g. a fraction leaving fewer samples than a split needs
            raise UserError(f"the tree cannot be fitted with these hyperparameters: {error}") from None
        return model

    def training_metrics(
        self, model: DecisionTreeClassifier, data: LabelledData, params: dict[str, Any]
    ) -> dict[str, Any]:
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

    def validation_metrics(self, model: DecisionTreeClassifier, data: LabelledData) -> dict[str, Any]:
        unknown = sorted(set(data.labels) - set(model.classes_))
        if unknown:
            raise DataError(f"the validation data has classes the training data lacks: {', '.join(unknown)}")
        return {"rows": int(data.labels.size), "accuracy": float(model.score(data.features, data.labels))}

    def describe(self, model: DecisionTreeClassifier) -> dict[str, Any]:
        return {"estimator": self.estimator, "classes": [str(label) for label in model.classes_]}

    def save(self, model: DecisionTreeClassifier, model_dir: Path) -> None:
        joblib.dump(model, Path(model_dir) / MODEL_FILE)
        TreeModel(model).save_tree(model_dir)

    def load(self, model_dir: Path, metadata: dict[str, Any]) -> TreeModel:
        return TreeModel.load(model_dir)


SLOT = IrisTree()
