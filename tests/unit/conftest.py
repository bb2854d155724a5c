"""Fixtures for the Lambda handlers: fake credentials, moto, and handler modules loaded the way the
local runtime loads them (by file, under a unique name, with the function's folder on sys.path)."""

from __future__ import annotations

import gc
import sys

import pytest
from fnharness import REGION, FakeLambdaContext
from moto import mock_aws

# Every test sets the same fake credentials, so one boto3 session can serve them all: re-reading the
# service models for each test costs more than the tests themselves.
KEEP_BOTO3_SESSION: dict = {"core": {"reset_boto3_session": False}}
_heap_frozen = False


def pytest_runtest_logfinish(nodeid: str, location: tuple) -> None:
    """After the first test has imported boto3, botocore's models and moto, take those long-lived objects
    out of the cyclic collector's sight: full collections over them dominated the suite's run time."""
    global _heap_frozen
    if not _heap_frozen:
        gc.collect()
        gc.freeze()
        _heap_frozen = True


@pytest.fixture(autouse=True)
def _forget_loaded_functions():
    """Each test gets fresh handler modules; old ones (and the clients they hold) are released."""
    yield
    for name in [name for name in sys.modules if name.startswith("lambda_")]:
        del sys.modules[name]


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region before any client exists, so nothing can reach a real account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "mlops-iris")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")


@pytest.fixture
def aws(aws_credentials: None):
    with mock_aws(config=KEEP_BOTO3_SESSION):
        yield


@pytest.fixture
def aws_with_sfn_engine(aws_credentials: None):
    """moto with its Step Functions interpreter on, so task tokens belong to real waiting executions."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, **KEEP_BOTO3_SESSION}):
        yield


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A served model folder as train leaves it: a decision tree fitted on all of iris (labels as names)."""
    import joblib
    from mlmodel.contract import MODEL_FILE
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    iris = load_iris()
    estimator = DecisionTreeClassifier(random_state=0).fit(iris.data, iris.target_names[iris.target])
    path = tmp_path_factory.mktemp("model")
    joblib.dump(estimator, path / MODEL_FILE)
    return path
