"""Training in-process: data loading, artifacts, failure reasons and exit codes."""

import importlib.util
import json
from pathlib import Path

import joblib
import pytest
from mlmodel import train as train_module
from mlmodel.contract import (
    BASE_DIR_ENV,
    EXIT_OK,
    EXIT_UNEXPECTED,
    EXIT_USER_ERROR,
    METADATA_FILE,
    MODEL_FILE,
    Paths,
)
from mlmodel.dataset import DataError, load_channel

ROOT = Path(__file__).resolve().parents[2]


def load_prepare_data():
    spec = importlib.util.spec_from_file_location("prepare_data", ROOT / "scripts" / "prepare_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def base(tmp_path, monkeypatch) -> Paths:
    paths = Paths(tmp_path / "ml")
    paths.channel_dir("training").mkdir(parents=True)
    paths.config_dir.mkdir(parents=True)
    monkeypatch.setenv(BASE_DIR_ENV, str(paths.base))
    return paths


@pytest.fixture
def iris_channel(base, tmp_path) -> Paths:
    train, _ = load_prepare_data().write_iris_split(tmp_path / "data")
    (base.channel_dir("training") / "train.csv").write_text(train.read_text())
    return base


def set_hyperparameters(paths: Paths, values: dict) -> None:
    paths.hyperparameters_file.write_text(json.dumps(values))


def failure(paths: Paths) -> str:
    return paths.failure_file.read_text()


# --- data ------------------------------------------------------------------------------------------


def test_every_csv_in_the_channel_is_read(base):
    channel = base.channel_dir("training")
    (channel / "a.csv").write_text("setosa,1,2,3,4\nvirginica,5,6,7,8\n")
    (channel / "part").mkdir()
    (channel / "part" / "b.csv").write_text("versicolor,1.5,2.5,3.5,4.5\r\n\r\n")
    (channel / "notes.txt").write_text("not data")
    data = load_channel(channel)
    assert data.labels.tolist() == ["setosa", "virginica", "versicolor"]
    assert data.features.shape == (3, 4)
    assert data.files == ("a.csv", "part/b.csv")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("setosa,1,2,3,4\nsetosa,1,2,3\n", "a.csv line 2: expected a label and 4 features, found 3"),
        ("setosa,1,2,x,4\n", "a.csv line 1: column 4 'x' is not a number"),
        ("setosa,1,2,3,4\nsetosa,1,2_0,3,4\n", "a.csv line 2: column 3 '2_0' is not a number"),
        (
            "label,f1,f2,f3,f4\nsetosa,1,2,3,4\n",
            "line 1: column 2 'f1' is not a number (the files must have no header",
        ),
        ("setosa,1,2,3,4\n,1,2,3,4\n", "a.csv line 2: the first column (the label) is empty"),
        ("setosa\n", "a.csv line 1: expected a label followed by numeric features"),
        ("setosa,1,2,3,4\nsetosa,1,nan,3,4\n", "a.csv line 2: column 3 'nan' is not a finite number"),
        ("\n\n", "have no rows"),
    ],
)
def test_malformed_training_data_names_the_file_and_line(base, content, message):
    (base.channel_dir("training") / "a.csv").write_text(content)
    with pytest.raises(DataError) as raised:
        load_channel(base.channel_dir("training"))
    assert message in str(raised.value)


def test_a_missing_channel_is_a_data_error(base):
    with pytest.raises(DataError, match="no 'validation' channel"):
        load_channel(base.channel_dir("validation"))


def test_a_channel_without_csv_files_says_what_it_found(base):
    (base.channel_dir("training") / "train.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataError, match=r"no \.csv file \(found train\.parquet\)"):
        load_channel(base.channel_dir("training"))


# --- training --------------------------------------------------------------------------------------


def test_training_writes_the_model_and_metadata(iris_channel):
    set_hyperparameters(iris_channel, {"max_depth": "3", "criterion": "entropy"})
    assert train_module.main() == EXIT_OK
    model = joblib.load(iris_channel.model_dir / MODEL_FILE)
    metadata = json.loads((iris_channel.model_dir / METADATA_FILE).read_text())
    assert model.get_depth() <= 3
    assert metadata["classes"] == ["setosa", "versicolor", "virginica"]
    assert metadata["n_features"] == 4
    assert metadata["hyperparameters"]["max_depth"] == 3
    assert metadata["hyperparameters"]["criterion"] == "entropy"
    assert set(metadata["versions"]) >= {"python", "numpy", "scikit-learn"}
    training = metadata["metrics"]["training"]
    assert training["rows"] == 120
    assert training["class_counts"] == {"setosa": 40, "versicolor": 40, "virginica": 40}
    assert training["training_accuracy"] > 0.9
    assert 0.8 < training["cross_validation"]["accuracy"] <= 1.0
    assert not iris_channel.failure_file.exists()


def test_training_without_a_hyperparameters_file_uses_the_defaults(iris_channel):
    assert train_module.main() == EXIT_OK
    metadata = json.loads((iris_channel.model_dir / METADATA_FILE).read_text())
    assert metadata["hyperparameters"]["criterion"] == "gini"


def test_training_twice_gives_the_same_tree(iris_channel):
    train_module.main()
    first = (iris_channel.model_dir / MODEL_FILE).read_bytes()
    train_module.main()
    assert (iris_channel.model_dir / MODEL_FILE).read_bytes() == first


def test_a_validation_channel_is_scored(iris_channel, tmp_path):
    _, test = load_prepare_data().write_iris_split(tmp_path / "held-out")
    iris_channel.channel_dir("validation").mkdir()
    (iris_channel.channel_dir("validation") / "test.csv").write_text(test.read_text())
    assert train_module.main() == EXIT_OK
    validation = json.loads((iris_channel.model_dir / METADATA_FILE).read_text())["metrics"]["validation"]
    assert validation["rows"] == 30
    assert validation["accuracy"] > 0.8


def test_bad_hyperparameter_exits_1_and_the_failure_names_it(iris_channel):
    set_hyperparameters(iris_channel, {"max_depth": "-3"})
    assert train_module.main() == EXIT_USER_ERROR
    assert "hyperparameter max_depth='-3' is invalid: must be a positive integer" in failure(iris_channel)
    assert not (iris_channel.model_dir / MODEL_FILE).exists()


def test_unknown_hyperparameter_exits_1_naming_it(iris_channel):
    set_hyperparameters(iris_channel, {"feature_dim": "300"})
    assert train_module.main() == EXIT_USER_ERROR
    assert "unknown hyperparameter 'feature_dim'" in failure(iris_channel)


def test_missing_training_data_exits_1_with_a_reason(base):
    assert train_module.main() == EXIT_USER_ERROR
    assert "'training' channel has no .csv file" in failure(base)


def test_a_single_class_is_a_data_error(base):
    (base.channel_dir("training") / "a.csv").write_text("setosa,1,2,3,4\nsetosa,2,3,4,5\n")
    assert train_module.main() == EXIT_USER_ERROR
    assert "single class 'setosa'" in failure(base)


def test_non_csv_content_type_is_refused(iris_channel):
    iris_channel.input_data_config_file.write_text(
        json.dumps({"training": {"ContentType": "application/x-parquet"}})
    )
    assert train_module.main() == EXIT_USER_ERROR
    assert "only text/csv" in failure(iris_channel)


def test_hyperparameters_that_are_not_json_are_a_user_error(iris_channel):
    iris_channel.hyperparameters_file.write_text("max_depth=3")
    assert train_module.main() == EXIT_USER_ERROR
    assert "is not valid JSON" in failure(iris_channel)


def test_unexpected_error_exits_2_and_still_writes_the_failure(iris_channel, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("joblib.dump", broken)
    assert train_module.main() == EXIT_UNEXPECTED
    assert failure(iris_channel).strip() == "Training failed unexpectedly: RuntimeError: disk on fire"


def test_failure_reason_is_one_paragraph_within_sagemakers_limit(base):
    train_module.write_failure(base, "first line\nsecond line " + "x" * 5000)
    text = failure(base)
    assert text.count("\n") == 1
    assert text.startswith("first line second line")
    assert len(text) <= 1025


# --- the data script -------------------------------------------------------------------------------


def test_prepare_data_writes_a_stratified_label_first_split(tmp_path):
    train, test = load_prepare_data().write_iris_split(tmp_path)
    train_rows = [line.split(",") for line in train.read_text().splitlines()]
    test_rows = [line.split(",") for line in test.read_text().splitlines()]
    assert (len(train_rows), len(test_rows)) == (120, 30)
    assert all(len(row) == 5 for row in train_rows + test_rows)
    assert {row[0] for row in test_rows} == {"setosa", "versicolor", "virginica"}
    assert sorted(row[0] for row in test_rows).count("setosa") == 10
    assert not {",".join(row) for row in test_rows} & {",".join(row) for row in train_rows}


def test_prepare_data_is_reproducible_and_seeded(tmp_path):
    module = load_prepare_data()
    first = module.write_iris_split(tmp_path / "a")[1].read_text()
    assert module.write_iris_split(tmp_path / "b")[1].read_text() == first
    assert module.write_iris_split(tmp_path / "c", seed=1)[1].read_text() != first


def test_prepare_data_cli_writes_to_out(tmp_path, capsys):
    assert load_prepare_data().main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "train.csv").is_file() and (tmp_path / "test.csv").is_file()
    assert "120 rows" in capsys.readouterr().out
