"""Model slots: the diabetes regressor and the iris tree trained by `train` and served by `serve` alike."""

import json

import pytest
from mlmodel import train as train_module
from mlmodel.contract import (
    BASE_DIR_ENV,
    EXIT_OK,
    EXIT_USER_ERROR,
    METADATA_FILE,
    MODEL_ENV,
    Paths,
)
from mlmodel.serve import create_app

from mlops.data import SAMPLE_ROWS, write_split

CSV = {"Content-Type": "text/csv"}


def prepared(example: str, tmp_path, monkeypatch, validation: bool = False) -> Paths:
    paths = Paths(tmp_path / "ml")
    train, test = write_split(example, tmp_path / "data")
    for channel, source in [("training", train), *([("validation", test)] if validation else [])]:
        paths.channel_dir(channel).mkdir(parents=True)
        (paths.channel_dir(channel) / source.name).write_text(source.read_text())
    paths.config_dir.mkdir(parents=True)
    monkeypatch.setenv(BASE_DIR_ENV, str(paths.base))
    monkeypatch.setenv(MODEL_ENV, example)
    return paths


@pytest.fixture(scope="module")
def diabetes_model(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        paths = prepared("diabetes", tmp_path_factory.mktemp("diabetes"), monkeypatch, validation=True)
        assert train_module.main() == EXIT_OK
    return paths


def test_diabetes_training_writes_regression_metadata(diabetes_model):
    metadata = json.loads((diabetes_model.model_dir / METADATA_FILE).read_text())
    assert metadata["model"] == "diabetes"
    assert metadata["problem_type"] == "regression"
    assert metadata["n_features"] == 10 and metadata["feature_names"][:3] == ["age", "sex", "bmi"]
    assert metadata["target"] == "disease_progression" and "classes" not in metadata
    validation = metadata["metrics"]["validation"]
    assert validation["rows"] == 88
    assert (
        30 < validation["rmse"] < 75 and validation["mae"] < validation["rmse"] and 0.2 < validation["r2"] < 1
    )
    assert metadata["metrics"]["training"]["cross_validation"]["folds"] == 5


def test_iris_metadata_names_its_slot_and_problem_type(tmp_path, monkeypatch):
    paths = prepared("iris", tmp_path, monkeypatch)
    assert train_module.main() == EXIT_OK
    metadata = json.loads((paths.model_dir / METADATA_FILE).read_text())
    assert (metadata["model"], metadata["problem_type"]) == ("iris", "classification")
    assert metadata["feature_names"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def test_served_diabetes_model_answers_a_number_per_row(diabetes_model):
    client = create_app(diabetes_model.model_dir).test_client()
    one = client.post("/invocations", data=SAMPLE_ROWS["diabetes"].encode(), headers=CSV)
    assert one.status_code == 200 and one.mimetype == "text/csv"
    assert 25 <= float(one.data) <= 346  # the target's range in the data
    two = client.post(
        "/invocations",
        data=(SAMPLE_ROWS["diabetes"] + "\n48,1,21.6,87,183,103.2,70,3,3.8918,69").encode(),
        headers={**CSV, "Accept": "application/json"},
    )
    values = two.get_json()
    assert len(values) == 2 and all(isinstance(v, float) for v in values) and values[0] == float(one.data)


def test_served_diabetes_model_refuses_four_features_naming_ten(diabetes_model):
    client = create_app(diabetes_model.model_dir).test_client()
    response = client.post("/invocations", data=b"4.5,1.3,0.3,0.3", headers=CSV)
    assert response.status_code == 400
    body = response.get_json()
    assert "expected 10 comma-separated numbers" in body["error"] and body["expected_features"] == 10


def test_bad_diabetes_hyperparameter_is_named(tmp_path, monkeypatch):
    paths = prepared("diabetes", tmp_path, monkeypatch)
    paths.hyperparameters_file.write_text(json.dumps({"learning_rate": "2"}))
    assert train_module.main() == EXIT_USER_ERROR
    assert (
        "hyperparameter learning_rate='2' is invalid: must be a number in (0, 1]"
        in paths.failure_file.read_text()
    )


def test_a_tree_hyperparameter_is_unknown_to_the_regressor(tmp_path, monkeypatch):
    paths = prepared("diabetes", tmp_path, monkeypatch)
    paths.hyperparameters_file.write_text(json.dumps({"criterion": "gini"}))
    assert train_module.main() == EXIT_USER_ERROR
    assert "unknown hyperparameter 'criterion'" in paths.failure_file.read_text()


def test_a_class_name_label_is_refused_by_the_regressor(tmp_path, monkeypatch):
    paths = prepared("diabetes", tmp_path, monkeypatch)
    (paths.channel_dir("training") / "train.csv").write_text("setosa,1,2\n1.5,2,3\n")
    assert train_module.main() == EXIT_USER_ERROR
    assert "the label 'setosa' is not a number" in paths.failure_file.read_text()


def test_an_unknown_model_exits_1_naming_the_slots(tmp_path, monkeypatch):
    paths = prepared("iris", tmp_path, monkeypatch)
    monkeypatch.setenv(MODEL_ENV, "wine")
    assert train_module.main() == EXIT_USER_ERROR
    assert (
        "unknown model 'wine' (MLMODEL_NAME): this image holds iris, diabetes"
        in paths.failure_file.read_text()
    )
