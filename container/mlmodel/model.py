"""The trained model as the server uses it: load once, predict class indices for a batch or one row.

Predictions are exactly sklearn's `DecisionTreeClassifier.predict`: sklearn casts inputs to float32 and
compares them with the split thresholds, then takes the argmax of the leaf's class values. Doing the same
without sklearn's per-call input validation makes a single-row prediction a few microseconds.

A batch on a small tree (at most `MAX_TABLE_SPLITS` split nodes, as a tree trained on iris is) is
answered from a table: every split's comparison is made for all rows at once, the outcomes form one code
per row, and a table built at load time maps each code to the leaf the tree walk would reach. Larger
trees descend level by level instead.
"""

from __future__ import annotations

import json
import logging
from array import array
from pathlib import Path

import numpy as np

from mlmodel.contract import METADATA_FILE, MODEL_FILE, TREE_FILE
from mlmodel.payload import JSON, CsvLabels, format_json

log = logging.getLogger(__name__)
_LEAF = -1  # sklearn's TREE_LEAF
MAX_TABLE_SPLITS = 16  # a table of 2**16 entries; one comparison pass per split


def float32_thresholds(thresholds: np.ndarray) -> np.ndarray:
    """The largest float32 at or below each float64 threshold: for any float32 x, x <= t exactly when x <= it,
    so comparisons can stay in float32."""
    down = np.asarray(thresholds, dtype=np.float64).astype(np.float32)
    above = down.astype(np.float64) > thresholds
    down[above] = np.nextafter(down[above], np.float32(-np.inf))
    return down


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
        # Plain lists: indexing them from Python is several times faster than indexing numpy arrays.
        self._left = self._left_array.tolist()
        self._right = self._right_array.tolist()
        self._feature = self._feature_array.tolist()
        self._threshold = self._threshold_array.tolist()
        self._leaf_class_list = self._leaf_class.tolist()
        self._splits = np.flatnonzero(self._left_array != _LEAF)
        self._table = self._outcome_table() if 0 < self._splits.size <= MAX_TABLE_SPLITS else None
        self._split_features = self._feature_array[self._splits].tolist()
        self._split_thresholds = list(float32_thresholds(self._threshold_array[self._splits]))
        self._csv_labels = CsvLabels(self.labels)

    def describe(self) -> str:
        return f"a decision tree, classes {self.labels}, {self.n_features} features"

    def answer(self, rows: np.ndarray, media_type: str) -> bytes:
        """The response body for rows of features: one label per row, as CSV lines or a JSON list."""
        indices = [self.predict_one(rows[0].tolist())] if rows.shape[0] == 1 else self.predict_indices(rows)
        if media_type == JSON:
            return format_json([self.labels[i] for i in indices])
        return self._csv_labels.format(indices)

    def _outcome_table(self) -> np.ndarray:
        """Class index for every code. A code holds one bit per split node, the first split node in the
        highest bit: 1 where that node's comparison holds (the walk would go left)."""
        n_splits = self._splits.size
        shift = np.zeros(len(self._left_array), dtype=np.intp)
        shift[self._splits] = n_splits - 1 - np.arange(n_splits)
        codes = np.arange(2**n_splits)
        node = np.zeros(codes.size, dtype=np.intp)
        while True:
            inner = self._left_array[node] != _LEAF
            if not inner.any():
                return self._leaf_class[node].astype(np.uint8 if len(self.labels) <= 256 else np.intp)
            go_left = (codes >> shift[node]) & 1
            step = np.where(go_left == 1, self._left_array[node], self._right_array[node])
            node = np.where(inner, step, node)

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

        Small trees: from the outcome table. Others: all rows descend one level per step; rows that reached
        a leaf drop out of the working set."""
        if self._table is not None and len(rows):
            return self._predict_from_table(rows)
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

    def _predict_from_table(self, rows: np.ndarray) -> np.ndarray:
        columns = np.asarray(rows, dtype=np.float32).T.copy()  # one contiguous row per feature
        code = np.zeros(columns.shape[1], dtype=np.uint16)
        held = np.empty(columns.shape[1], dtype=bool)
        for feature, threshold in zip(self._split_features, self._split_thresholds, strict=True):
            np.less_equal(columns[feature], threshold, out=held)
            code <<= 1
            code |= held.view(np.uint8)
        return self._table[code]

    def predict_one(self, row: list[float]) -> int:
        """The class index for one row, walking the tree in Python (no array allocation)."""
        x = array("f", row).tolist()  # float32 rounding, as sklearn applies
        left, right, feature, threshold = self._left, self._right, self._feature, self._threshold
        node = 0
        while left[node] != _LEAF:
            node = left[node] if x[feature[node]] <= threshold[node] else right[node]
        return self._leaf_class_list[node]


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
