"""Local endpoints through the SageMaker API: Creating → InService, a DescribeEndpoint that waits for a short
transition to end, and UpdateEndpoint to a new config; the model server really answers."""

import io
import json
import tarfile
import time

import joblib
import pytest
from mlmodel.contract import MODEL_FILE
from mlmodel.model import TreeModel
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

from mlops.local import sagemaker
from mlops.local.stack import LocalStack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
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
    local.client("s3").put_object(Bucket=local.bucket, Key="model/model.tar.gz", Body=archive.getvalue())
    yield local
    local.stop()


def config(stack, name):
    sm = stack.client("sagemaker")
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=stack.role_arn,
        PrimaryContainer={"Image": "local", "ModelDataUrl": f"s3://{stack.bucket}/model/model.tar.gz"},
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    return name


def predict(stack, endpoint, row):
    answer = stack.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body=row
    )
    return json.loads(answer["Body"].read())


def test_describe_answers_in_service_once_a_quick_start_ends(stack):
    sm = stack.client("sagemaker")
    sm.create_endpoint(EndpointName="quick", EndpointConfigName=config(stack, "quick-1"))
    described = sm.describe_endpoint(EndpointName="quick")
    assert described["EndpointStatus"] == "InService"
    assert predict(stack, "quick", "4.5,1.3,0.3,0.3") == ["setosa"]

    sm.update_endpoint(EndpointName="quick", EndpointConfigName=config(stack, "quick-2"))
    described = sm.describe_endpoint(EndpointName="quick")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "quick-2")
    assert predict(stack, "quick", "5.9,3,5.1,1.8") == ["virginica"]


def test_a_poller_that_does_not_wait_sees_creating_then_in_service(stack, monkeypatch):
    monkeypatch.setattr(sagemaker, "SETTLE_SECONDS", 0.0)
    sm = stack.client("sagemaker")
    sm.create_endpoint(EndpointName="polled", EndpointConfigName=config(stack, "polled-1"))
    statuses = [sm.describe_endpoint(EndpointName="polled")["EndpointStatus"]]
    deadline = time.monotonic() + 30
    while statuses[-1] == "Creating" and time.monotonic() < deadline:
        time.sleep(0.01)
        statuses.append(sm.describe_endpoint(EndpointName="polled")["EndpointStatus"])
    assert statuses[0] == "Creating"
    assert statuses[-1] == "InService"
