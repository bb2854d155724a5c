import numpy as np
import pytest

from mlops.data import load_iris_rows, stratified_split, write_iris_split


def test_iris_rows_match_scikit_learns_loader():
    from sklearn.datasets import load_iris

    features, labels = load_iris_rows()
    iris = load_iris()
    assert np.array_equal(features, iris.data)
    assert labels.tolist() == iris.target_names[iris.target].tolist()


def test_split_is_stratified_disjoint_complete_and_seeded():
    _, labels = load_iris_rows()
    train, test = stratified_split(labels, 0.2, seed=7)
    assert sorted([*train, *test]) == list(range(150))
    assert {label: int((labels[test] == label).sum()) for label in np.unique(labels)} == {
        "setosa": 10,
        "versicolor": 10,
        "virginica": 10,
    }
    again = stratified_split(labels, 0.2, seed=7)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    assert not np.array_equal(test, stratified_split(labels, 0.2, seed=8)[1])


def test_written_files_are_label_first_without_header(tmp_path):
    train, test = write_iris_split(tmp_path)
    rows = test.read_text().splitlines()
    assert len(rows) == 30 and len(train.read_text().splitlines()) == 120
    label, *values = rows[0].split(",")
    assert label in {"setosa", "versicolor", "virginica"} and len(values) == 4
    [float(v) for v in values]


@pytest.mark.parametrize("size", [0, 1, -0.1])
def test_test_size_outside_zero_and_one_is_refused(size):
    with pytest.raises(ValueError, match="test_size"):
        stratified_split(np.array(["a", "b"]), size, seed=1)


def test_diabetes_split_is_target_first_with_ten_features_and_seeded(tmp_path):
    from mlops.data import load_diabetes_rows, write_split

    train, test = write_split("diabetes", tmp_path / "a")
    rows = test.read_text().splitlines()
    assert len(rows) == 88 and len(train.read_text().splitlines()) == 354
    target, *values = rows[0].split(",")
    assert len(values) == 10 and 25 <= float(target) <= 346
    features, _ = load_diabetes_rows()
    assert features.shape == (442, 10)
    assert write_split("diabetes", tmp_path / "b")[1].read_text() == test.read_text()


def test_an_unknown_example_is_refused_naming_the_choices(tmp_path):
    from mlops.data import write_split

    with pytest.raises(ValueError, match="unknown example 'wine': choose iris or diabetes"):
        write_split("wine", tmp_path)
