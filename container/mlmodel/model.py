"""The trained model as the server uses it: load once, predict class indices for a batch or one row.

Predictions are exactly sklearn's `DecisionTreeClassifier.predict`: sklearn casts inputs to float32 and
compares them with the split thresholds, then takes the argmax of the leaf's class values. Doing the same
without sklearn's per-call input validation makes a single-row prediction a few microseconds.
"""

from __future__ import annotations

import json
import logging
from array import array
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.tree import DecisionTreeClassifier

from mlmodel.contract import METADATA_FILE, MODEL_FILE

log = logging.getLogger(__name__)
_LEAF = -1  # sklearn's TREE_LEAF


class TreeModel:
    def __init__(self, estimator: DecisionTreeClassifier, metadata: dict | None = None):
        self.estimator = estimator
        self.metadata = metadata or {}
        self.labels = [str(label) for label in estimator.classes_]
        self.n_features = int(estimator.n_features_in_)
        tree = estimator.tree_
        self._leaf_class = tree.value[:, 0, :].argmax(axis=1)
        self._label_bytes = np.array([label.encode() for label in self.labels], dtype=object)
        # Plain lists: indexing them from Python is several times faster than indexing numpy arrays.
        self._left = tree.children_left.tolist()
        self._right = tree.children_right.tolist()
        self._feature = tree.feature.tolist()
        self._threshold = tree.threshold.tolist()
        self._leaf_class_list = self._leaf_class.tolist()

    @classmethod
    def load(cls, model_dir: Path) -> TreeModel:
        estimator = joblib.load(Path(model_dir) / MODEL_FILE)
        if not isinstance(estimator, DecisionTreeClassifier) or not hasattr(estimator, "tree_"):
            raise TypeError(f"{MODEL_FILE} does not hold a fitted DecisionTreeClassifier")
        if estimator.n_outputs_ != 1:
            raise TypeError(f"{MODEL_FILE} predicts {estimator.n_outputs_} outputs; the server handles one")
        metadata_file = Path(model_dir) / METADATA_FILE
        metadata = json.loads(metadata_file.read_text()) if metadata_file.is_file() else {}
        trained_with = metadata.get("versions", {}).get("scikit-learn")
        if trained_with and trained_with != sklearn.__version__:
            log.warning(
                "the model was trained with scikit-learn %s; serving with %s",
                trained_with,
                sklearn.__version__,
            )
        return cls(estimator, metadata)

    def predict_indices(self, rows: np.ndarray) -> np.ndarray:
        """Class indices (into `labels`) for a float64 array of shape (n, n_features)."""
        leaves = self.estimator.tree_.apply(np.ascontiguousarray(rows, dtype=np.float32))
        return self._leaf_class[leaves]

    def predict_one(self, row: list[float]) -> int:
        """The class index for one row, walking the tree in Python (no array allocation)."""
        x = array("f", row).tolist()  # float32 rounding, as sklearn applies
        left, right, feature, threshold = self._left, self._right, self._feature, self._threshold
        node = 0
        while left[node] != _LEAF:
            node = left[node] if x[feature[node]] <= threshold[node] else right[node]
        return self._leaf_class_list[node]

    def label_bytes(self, indices: np.ndarray) -> np.ndarray:
        return self._label_bytes[indices]
