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

import numpy as np

from mlmodel.contract import METADATA_FILE, MODEL_FILE, TREE_FILE

log = logging.getLogger(__name__)
_LEAF = -1  # sklearn's TREE_LEAF


class TreeModel:
    """A fitted tree as plain arrays: serving needs numpy only, so a server starts without importing sklearn."""

    def __init__(
        self, estimator=None, metadata: dict | None = None, *, arrays: dict[str, np.ndarray] | None = None
    ):
        self.estimator = estimator
        self.metadata = metadata or {}
        arrays = arrays if arrays is not None else tree_arrays(estimator)
        self.labels = [str(label) for label in arrays["labels"]]
        self.n_features = int(arrays["n_features"])
        self._left_array = np.asarray(arrays["left"], dtype=np.intp)
        self._right_array = np.asarray(arrays["right"], dtype=np.intp)
        self._feature_array = np.asarray(arrays["feature"], dtype=np.intp)
        self._threshold_array = np.asarray(arrays["threshold"], dtype=np.float64)
        self._leaf_class = np.asarray(arrays["leaf_class"], dtype=np.intp)
        self._label_bytes = np.array([label.encode() for label in self.labels], dtype=object)
        # Plain lists: indexing them from Python is several times faster than indexing numpy arrays.
        self._left = self._left_array.tolist()
        self._right = self._right_array.tolist()
        self._feature = self._feature_array.tolist()
        self._threshold = self._threshold_array.tolist()
        self._leaf_class_list = self._leaf_class.tolist()

    def save_tree(self, model_dir: Path) -> Path:
        path = Path(model_dir) / TREE_FILE
        np.savez(
            path,
            left=self._left_array,
            right=self._right_array,
            feature=self._feature_array,
            threshold=self._threshold_array,
            leaf_class=self._leaf_class,
            labels=np.array(self.labels),
            n_features=np.array(self.n_features),
        )
        return path

    @classmethod
    def load(cls, model_dir: Path) -> TreeModel:
        metadata_file = Path(model_dir) / METADATA_FILE
        tree_file = Path(model_dir) / TREE_FILE
        if tree_file.is_file():
            metadata = json.loads(metadata_file.read_text()) if metadata_file.is_file() else {}
            with np.load(tree_file, allow_pickle=False) as arrays:
                return cls(metadata=metadata, arrays={k: arrays[k] for k in arrays.files})
        return cls.load_estimator(model_dir)

    @classmethod
    def load_estimator(cls, model_dir: Path) -> TreeModel:
        """A model directory holding only the joblib file, e.g. a tree trained elsewhere with scikit-learn."""
        import joblib
        import sklearn
        from sklearn.tree import DecisionTreeClassifier

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
        """Class indices (into `labels`) for a float64 array of shape (n, n_features).

        All rows descend one level per step; rows that reached a leaf drop out of the working set."""
        x = np.ascontiguousarray(rows, dtype=np.float32)
        node = np.zeros(len(x), dtype=np.intp)
        active = np.arange(len(x)) if self._left_array[0] != _LEAF else np.arange(0)
        while active.size:
            current = node[active]
            go_left = x[active, self._feature_array[current]] <= self._threshold_array[current]
            nxt = np.where(go_left, self._left_array[current], self._right_array[current])
            node[active] = nxt
            active = active[self._left_array[nxt] != _LEAF]
        return self._leaf_class[node]

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


def tree_arrays(estimator) -> dict[str, np.ndarray]:
    tree = estimator.tree_
    return {
        "left": tree.children_left,
        "right": tree.children_right,
        "feature": tree.feature,
        "threshold": tree.threshold,
        "leaf_class": tree.value[:, 0, :].argmax(axis=1),
        "labels": np.array([str(label) for label in estimator.classes_]),
        "n_features": np.array(int(estimator.n_features_in_)),
    }
