"""A local stack whose bucket holds a decision-tree model archive at training/model/output/model.tar.gz, for
tests that create models and endpoints through the SageMaker API themselves."""

import io
import tarfile

import joblib
import pytest
from mlmodel.contract import MODEL_FILE
from mlmodel.model import TreeModel
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

from mlops.local.stack import LocalStack


@pytest.fixture(scope="module")
def stack_with_a_model(tmp_path_factory):
    local = LocalStack(work_dir=tmp_path_factory.mktemp("work")).start()
    model_dir = tmp_path_factory.mktemp("model")
    iris = load_iris()
    estimator = DecisionTreeClassifier(random_state=0).fit(iris.data, iris.target_names[iris.target])
    joblib.dump(estimator, model_dir / MODEL_FILE)
    TreeModel(estimator).save_tree(model_dir)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path in model_dir.iterdir():
            tar.add(path, arcname=path.name)
    local.client("s3").put_object(
        Bucket=local.bucket, Key="training/model/output/model.tar.gz", Body=archive.getvalue()
    )
    yield local
    local.stop()
