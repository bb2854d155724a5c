import json

import joblib
import numpy as np
import pytest
from mlmodel.contract import METADATA_FILE, MODEL_FILE
from mlmodel.model import TreeModel, float32_thresholds
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

IRIS = load_iris()
IRIS_LABELS = IRIS.target_names[IRIS.target]


def fitted(**params) -> TreeModel:
    estimator = DecisionTreeClassifier(random_state=0, **params).fit(IRIS.data, IRIS_LABELS)
    return TreeModel(estimator)


@pytest.fixture(scope="module", params=[{}, {"max_depth": 2}, {"criterion": "entropy", "max_leaf_nodes": 5}])
def model(request) -> TreeModel:
    return fitted(**request.param)


def sklearn_labels(model: TreeModel, rows: np.ndarray) -> list[str]:
    return model.estimator.predict(rows).tolist()


def test_single_row_path_equals_sklearn_predict_on_every_iris_row(model):
    fast = [model.labels[model.predict_one(row.tolist())] for row in IRIS.data]
    assert fast == sklearn_labels(model, IRIS.data)


def test_batch_path_equals_sklearn_predict_on_every_iris_row(model):
    assert [model.labels[i] for i in model.predict_indices(IRIS.data)] == sklearn_labels(model, IRIS.data)


def test_both_paths_agree_with_sklearn_at_and_around_every_threshold(model):
    # The float32 cast decides near a threshold: probe the threshold itself and its float64 neighbours.
    tree = model.estimator.tree_
    splits = np.flatnonzero(tree.children_left != -1)
    rows = []
    for node in splits:
        for value in (tree.threshold[node], *np.nextafter(tree.threshold[node], [-np.inf, np.inf])):
            for base in IRIS.data[::10]:
                row = base.copy()
                row[tree.feature[node]] = value
                rows.append(row)
    rows = np.array(rows)
    expected = sklearn_labels(model, rows)
    assert [model.labels[model.predict_one(row.tolist())] for row in rows] == expected
    assert [model.labels[i] for i in model.predict_indices(rows)] == expected


def test_both_paths_agree_with_sklearn_on_random_and_extreme_rows(model):
    rng = np.random.default_rng(3)
    rows = np.vstack([rng.uniform(-10, 20, (500, 4)), [[3.4e38, -3.4e38, 1e-300, -1e-45], [0, 0, 0, 0]]])
    expected = sklearn_labels(model, rows)
    assert [model.labels[model.predict_one(row.tolist())] for row in rows] == expected
    assert [model.labels[i] for i in model.predict_indices(rows)] == expected


def test_predicted_indices_name_the_classes(model):
    indices = model.predict_indices(IRIS.data[[0, 149, 50]])
    assert [model.labels[i] for i in indices] == ["setosa", "virginica", "versicolor"]


def test_load_reads_the_model_and_metadata(tmp_path):
    estimator = DecisionTreeClassifier(random_state=0).fit(IRIS.data, IRIS_LABELS)
    joblib.dump(estimator, tmp_path / MODEL_FILE)
    (tmp_path / METADATA_FILE).write_text(json.dumps({"classes": ["setosa", "versicolor", "virginica"]}))
    model = TreeModel.load(tmp_path)
    assert (model.labels, model.n_features) == (["setosa", "versicolor", "virginica"], 4)
    assert model.metadata["classes"] == model.labels


def test_load_refuses_something_other_than_a_fitted_tree(tmp_path):
    joblib.dump({"not": "a model"}, tmp_path / MODEL_FILE)
    with pytest.raises(TypeError, match="DecisionTreeClassifier"):
        TreeModel.load(tmp_path)


def test_load_of_a_missing_model_fails(tmp_path):
    with pytest.raises(FileNotFoundError):
        TreeModel.load(tmp_path)


def test_load_warns_when_scikit_learn_differs_from_training(tmp_path, caplog):
    estimator = DecisionTreeClassifier(random_state=0).fit(IRIS.data, IRIS_LABELS)
    joblib.dump(estimator, tmp_path / MODEL_FILE)
    (tmp_path / METADATA_FILE).write_text(json.dumps({"versions": {"scikit-learn": "0.1"}}))
    TreeModel.load(tmp_path)
    assert "trained with scikit-learn 0.1" in caplog.text


def test_tree_file_model_predicts_exactly_as_sklearn_around_every_threshold(tmp_path):
    estimator = DecisionTreeClassifier(random_state=0).fit(IRIS.data, IRIS_LABELS)
    TreeModel(estimator).save_tree(tmp_path)
    loaded = TreeModel.load(tmp_path)
    assert loaded.estimator is None  # served from the arrays alone
    tree = estimator.tree_
    rng = np.random.default_rng(0)
    rows = np.vstack([IRIS.data, rng.uniform(0, 8, size=(5000, 4))])
    for node in np.flatnonzero(tree.children_left != -1):  # on, just below and just above each split
        for delta in (0.0, -1e-6, 1e-6):
            row = IRIS.data.mean(axis=0)
            row[tree.feature[node]] = tree.threshold[node] + delta
            rows = np.vstack([rows, row])
    expected = estimator.predict(rows).tolist()
    assert [loaded.labels[i] for i in loaded.predict_indices(rows)] == expected
    assert [loaded.labels[loaded.predict_one(r.tolist())] for r in rows[:300]] == expected[:300]


def test_serving_from_the_tree_file_does_not_import_sklearn(tmp_path):
    import subprocess
    import sys

    estimator = DecisionTreeClassifier(random_state=0).fit(IRIS.data, IRIS_LABELS)
    TreeModel(estimator).save_tree(tmp_path)
    probe = (
        "import sys; from mlmodel.model import TreeModel; m = TreeModel.load(sys.argv[1]); "
        "import numpy as np; print(m.labels[m.predict_indices(np.array([[4.5, 1.3, 0.3, 0.3]]))[0]]); "
        "print('sklearn' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["setosa", "False"]


def test_small_trees_answer_batches_from_the_outcome_table_and_agree_with_the_level_walk(model):
    assert model._table is not None
    rng = np.random.default_rng(5)
    rows = np.vstack([IRIS.data, rng.uniform(-1, 9, (2000, 4))])
    from_table = model.predict_indices(rows)
    walk = TreeModel(model.estimator)
    walk._table = None
    assert from_table.tolist() == walk.predict_indices(rows).tolist()
    assert [model.labels[i] for i in from_table] == sklearn_labels(model, rows)


def test_trees_with_many_splits_descend_level_by_level_exactly_as_sklearn():
    rng = np.random.default_rng(11)
    x = rng.uniform(0, 10, (3000, 4))
    y = np.array(["a", "b", "c"])[rng.integers(0, 3, 3000)]
    model = TreeModel(DecisionTreeClassifier(random_state=0, max_leaf_nodes=60).fit(x, y))
    assert model._table is None
    rows = np.vstack([x[:500], rng.uniform(-1, 11, (500, 4))])
    assert [model.labels[i] for i in model.predict_indices(rows)] == sklearn_labels(model, rows)


def test_float32_thresholds_decide_every_float32_input_as_the_float64_threshold_does():
    thresholds = np.array([0.8, 2.45, 1.75, 4.95, 1e-30, -2.5, 3.4e38, 0.1 + 0.2])
    down = float32_thresholds(thresholds)
    for t64, t32 in zip(thresholds, down, strict=True):
        x = np.float32(t64)
        probes = np.array([np.nextafter(x, np.float32(-np.inf)), x, np.nextafter(x, np.float32(np.inf))])
        assert ((probes <= t32) == (probes.astype(np.float64) <= t64)).all()
