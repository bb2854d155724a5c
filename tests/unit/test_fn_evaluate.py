"""The evaluate function against moto's S3 and SageMaker: scores, report, champion, malformed output."""

from __future__ import annotations

import io
import json

import boto3
import pytest
import requests
from botocore.response import StreamingBody
from botocore.stub import Stubber
from fnharness import load_function
from hypothesis import given
from hypothesis import strategies as st

BUCKET = "artifacts"
JOB = "mlops-iris-a1b2c3d-eval-e1"
PREDICTIONS_URI = f"s3://{BUCKET}/transform/{JOB}"
TEST_URI = f"s3://{BUCKET}/data/test/"
ENDPOINT = "mlops-iris-staging"
LABELS = ["setosa", "versicolor", "virginica"]
# true label, predicted label: one versicolor is taken for a virginica.
PAIRS = [("setosa", "setosa")] * 3 + [("versicolor", "versicolor")] * 2 + [("versicolor", "virginica")]
PAIRS += [("virginica", "virginica")] * 4
TEST_ROWS = [f"{label},5.1,3.5,1.4,0.{i}" for i, (label, _) in enumerate(PAIRS)]


def csv_lines(pairs) -> bytes:
    return "".join(f"{true},{predicted}\n" for true, predicted in pairs).encode()


def event(**overrides):
    return {
        "predictions_uri": PREDICTIONS_URI,
        "test_uri": TEST_URI,
        "release": {"commit": "a1b2c3d4e5f6", "image_uri": "repo:a1b2c3d4e5f6"},
        "names": {"transform_job": JOB, "endpoint_config": "mlops-iris-a1b2c3d-e1"},
        "endpoint_name": ENDPOINT,
        **overrides,
    }


def queue_endpoint_answers(*bodies: str) -> None:
    """moto's documented way to script what InvokeEndpoint answers, one body per call."""
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={"results": [{"Body": body, "ContentType": "text/csv"} for body in bodies]},
        timeout=5,
    )


def create_serving_endpoint(config: str = "mlops-iris-0f0f0f0-e0") -> None:
    sagemaker = boto3.client("sagemaker")
    sagemaker.create_model(
        ModelName="champion",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
        PrimaryContainer={"Image": "repo:0f0f0f0"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "champion",
                "InstanceType": "ml.t2.medium",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)


def streaming(text: str) -> StreamingBody:
    data = text.encode()
    return StreamingBody(io.BytesIO(data), len(data))


@pytest.fixture
def evaluate(aws, monkeypatch):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"transform/{JOB}/test.csv.out", Body=csv_lines(PAIRS))
    s3.put_object(Bucket=BUCKET, Key="data/test/test.csv", Body="\n".join(TEST_ROWS).encode())
    monkeypatch.setenv("ARTIFACT_BUCKET", BUCKET)
    return load_function("evaluate/app.py")


def test_scores_accuracy_confusion_matrix_and_per_class(evaluate, lambda_context):
    result = evaluate.handler(event(), lambda_context)

    assert result["accuracy"] == 0.9
    assert result["rows"] == 10
    assert result["labels"] == LABELS
    assert result["confusion_matrix"] == [[3, 0, 0], [0, 2, 1], [0, 0, 4]]
    assert result["per_class"]["versicolor"] == {"precision": 1.0, "recall": 0.6667, "support": 3}
    assert result["per_class"]["virginica"] == {"precision": 0.8, "recall": 1.0, "support": 4}
    assert result["champion"] is None


def test_writes_the_full_report_to_the_artifact_bucket(evaluate, lambda_context):
    result = evaluate.handler(event(), lambda_context)

    assert result["report_uri"] == f"s3://{BUCKET}/evaluation/{JOB}.json"
    report = json.loads(
        boto3.client("s3").get_object(Bucket=BUCKET, Key=f"evaluation/{JOB}.json")["Body"].read()
    )
    assert report["accuracy"] == 0.9
    assert report["confusion_matrix"] == result["confusion_matrix"]
    assert report["per_class"] == result["per_class"]
    assert report["prediction_objects"] == [f"s3://{BUCKET}/transform/{JOB}/test.csv.out"]
    assert report["release"]["commit"] == "a1b2c3d4e5f6"
    assert "predictions_url" not in report


def test_names_the_first_predictions_object_for_the_approval_page_to_presign(evaluate, lambda_context):
    # A link presigned here would expire with this function's session credentials, long before the approver
    # reads the mail; the approval page presigns this object when it opens.
    result = evaluate.handler(event(), lambda_context)

    assert result["predictions_object"] == f"s3://{BUCKET}/transform/{JOB}/test.csv.out"
    assert "predictions_url" not in result


def test_reads_every_out_object_and_ignores_other_files_and_other_jobs(evaluate, lambda_context):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"transform/{JOB}/more.csv.out", Body=b"setosa,virginica\r\n\r\n")
    s3.put_object(Bucket=BUCKET, Key=f"transform/{JOB}/_manifest.json", Body=b"{}")
    s3.put_object(Bucket=BUCKET, Key=f"transform/{JOB}0/other.csv.out", Body=b"garbage line with no comma\n")

    result = evaluate.handler(event(), lambda_context)

    assert result["rows"] == 11
    assert result["confusion_matrix"][0] == [3, 0, 1]


def test_quoted_csv_fields_are_read_as_values(evaluate, lambda_context):
    boto3.client("s3").put_object(
        Bucket=BUCKET,
        Key=f"transform/{JOB}/test.csv.out",
        Body=b'"setosa","setosa"\n"iris virginica",virginica\n',
    )

    result = evaluate.handler(event(), lambda_context)

    assert result["labels"] == ["iris virginica", "setosa", "virginica"]
    assert result["accuracy"] == 0.5


@pytest.mark.parametrize(
    "bad_line",
    ["setosa", "setosa,setosa,setosa", ",setosa", "setosa,", '"unterminated,setosa'],
)
def test_malformed_line_names_the_object_and_line_number(evaluate, lambda_context, bad_line):
    body = b"setosa,setosa\n\nversicolor,versicolor\n" + bad_line.encode() + b"\nvirginica,virginica\n"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"transform/{JOB}/test.csv.out", Body=body)

    with pytest.raises(evaluate.MalformedPredictionsError) as raised:
        evaluate.handler(event(), lambda_context)

    assert f"transform/{JOB}/test.csv.out line 4" in str(raised.value)


def test_undecodable_line_names_the_object_and_line_number(evaluate, lambda_context):
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key=f"transform/{JOB}/test.csv.out", Body=b"setosa,setosa\n\xff,x\n"
    )

    with pytest.raises(evaluate.MalformedPredictionsError, match=r"test\.csv\.out line 2"):
        evaluate.handler(event(), lambda_context)


def test_no_out_objects_is_a_clear_error(evaluate, lambda_context):
    with pytest.raises(
        evaluate.NoPredictionsError, match=r"no \.out objects under s3://artifacts/transform/other"
    ):
        evaluate.handler(event(predictions_uri=f"s3://{BUCKET}/transform/other"), lambda_context)


def test_empty_out_objects_are_a_clear_error(evaluate, lambda_context):
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"transform/{JOB}/test.csv.out", Body=b"\n\n")

    with pytest.raises(evaluate.NoPredictionsError, match="hold no rows"):
        evaluate.handler(event(), lambda_context)


def test_champion_is_scored_on_the_same_held_out_rows(evaluate, lambda_context):
    create_serving_endpoint()
    # The serving model gets two of ten wrong: one setosa and one virginica.
    answers = ["versicolor"] + [label for label, _ in PAIRS[1:-1]] + ["versicolor"]
    queue_endpoint_answers("\n".join(answers) + "\n")

    result = evaluate.handler(event(), lambda_context)

    assert result["champion"] == {"endpoint_config": "mlops-iris-0f0f0f0-e0", "accuracy": 0.8, "rows": 10}
    assert result["accuracy"] == 0.9


def test_champion_rows_are_sent_without_labels_in_chunks_within_the_limit(
    evaluate, lambda_context, monkeypatch
):
    create_serving_endpoint()
    monkeypatch.setattr(evaluate, "MAX_INVOKE_BYTES", 60)
    features = [row.split(",", 1)[1] for row in TEST_ROWS]
    expected_bodies = [features[0:3], features[3:6], features[6:9], features[9:10]]

    with Stubber(evaluate.runtime) as runtime:
        for rows in expected_bodies:
            runtime.add_response(
                "invoke_endpoint",
                {"Body": streaming("\n".join(label for label, _ in PAIRS[: len(rows)]))},
                {
                    "EndpointName": ENDPOINT,
                    "ContentType": "text/csv",
                    "Accept": "text/csv",
                    "Body": "\n".join(rows).encode(),
                },
            )
        result = evaluate.handler(event(), lambda_context)
        runtime.assert_no_pending_responses()

    assert result["champion"]["rows"] == 10


@pytest.fixture(scope="module")
def scoring():
    """The module for its pure functions: no AWS call happens, but creating its clients needs a region."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARTIFACT_BUCKET", BUCKET)
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield load_function("evaluate/app.py")


def test_chunks_never_exceed_the_limit_and_keep_every_row(scoring):
    evaluate = scoring
    rows = [f"{i}.0,{i}.5,2.0,0.{i}" for i in range(100)]

    chunks = list(evaluate.chunks(rows, 100))

    assert [row for chunk in chunks for row in chunk] == rows
    assert all(len("\n".join(chunk).encode()) + 1 <= 100 for chunk in chunks)


def test_champion_model_error_is_reported_not_fatal(evaluate, lambda_context):
    create_serving_endpoint()

    with Stubber(evaluate.runtime) as runtime:
        runtime.add_client_error("invoke_endpoint", service_error_code="ModelError", service_message="boom")
        result = evaluate.handler(event(), lambda_context)

    assert result["accuracy"] == 0.9
    assert result["champion"]["endpoint_config"] == "mlops-iris-0f0f0f0-e0"
    assert result["champion"]["accuracy"] is None
    assert "ModelError" in result["champion"]["error"]


def test_endpoint_not_in_service_has_no_champion(evaluate, lambda_context):
    with Stubber(evaluate.sagemaker) as sagemaker:
        sagemaker.add_response(
            "describe_endpoint",
            {
                "EndpointName": ENDPOINT,
                "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
                "EndpointConfigName": "mlops-iris-0f0f0f0-e0",
                "EndpointStatus": "Creating",
                "CreationTime": "2026-01-01T00:00:00Z",
                "LastModifiedTime": "2026-01-01T00:00:00Z",
            },
            {"EndpointName": ENDPOINT},
        )
        result = evaluate.handler(event(), lambda_context)

    assert result["champion"] is None


@given(st.lists(st.tuples(st.sampled_from(LABELS), st.sampled_from(LABELS)), min_size=1, max_size=50))
def test_scores_are_consistent_for_any_predictions(scoring, pairs):
    result = scoring.scores(pairs)

    matrix = result["confusion_matrix"]
    assert sum(map(sum, matrix)) == result["rows"] == len(pairs)
    correct = sum(true == predicted for true, predicted in pairs)
    assert result["accuracy"] == round(correct / len(pairs), 4)
    assert sum(c["support"] for c in result["per_class"].values()) == len(pairs)
    for i, label in enumerate(result["labels"]):
        assert result["per_class"][label]["support"] == sum(matrix[i])


def test_training_metrics_come_from_the_model_archive_and_a_missing_one_is_none(evaluate_fn_for_metrics):
    fn, s3 = evaluate_fn_for_metrics
    import io
    import json as _json
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = _json.dumps(
            {
                "metrics": {
                    "training": {
                        "rows": 120,
                        "training_accuracy": 1.0,
                        "tree_depth": 6,
                        "tree_leaves": 9,
                        "class_counts": {"a": 1},
                    }
                }
            }
        ).encode()
        info = tarfile.TarInfo("metadata.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    s3.put_object(Bucket="metrics-bucket", Key="training/job/output/model.tar.gz", Body=buffer.getvalue())
    metrics = fn.training_metrics("s3://metrics-bucket/training/job/output/model.tar.gz")
    assert metrics == {"rows": 120, "training_accuracy": 1.0, "tree_depth": 6, "tree_leaves": 9}
    assert fn.training_metrics("s3://metrics-bucket/training/none/model.tar.gz") is None
    assert fn.training_metrics(None) is None


@pytest.fixture
def evaluate_fn_for_metrics(aws, monkeypatch):
    monkeypatch.setenv("ARTIFACT_BUCKET", "metrics-bucket")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="metrics-bucket")
    return load_function("evaluate/app.py"), s3


def model_archive(s3, key: str, metadata: dict) -> str:
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = json.dumps(metadata).encode()
        info = tarfile.TarInfo("metadata.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    return f"s3://{BUCKET}/{key}"


REGRESSION_PAIRS = [("100", "110"), ("150", "140"), ("200", "230"), ("50", "50")]


@pytest.fixture
def regression(evaluate):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"transform/{JOB}/test.csv.out", Body=csv_lines(REGRESSION_PAIRS))
    uri = model_archive(
        s3,
        "training/job/output/model.tar.gz",
        {
            "model": "diabetes",
            "problem_type": "regression",
            "n_features": 10,
            "target": "disease_progression",
        },
    )
    return evaluate, uri


def test_a_regression_is_scored_by_rmse_mae_and_r2(regression, lambda_context):
    evaluate, uri = regression
    result = evaluate.handler(
        event(model_data=uri, endpoint_name=None, gate={"metric": "rmse", "threshold": "60"}), lambda_context
    )
    # errors 10, -10, 30, 0: RMSE sqrt(1100/4), MAE 12.5; R² against the spread around the mean 125
    assert result["problem_type"] == "regression" and result["accuracy"] is None
    assert result["metrics"] == {"rmse": 16.5831, "mae": 12.5, "r2": round(1 - 1100 / 12500, 4)}
    assert result["model"]["target"] == "disease_progression"
    assert result["gate"] == {
        "metric": "rmse",
        "label": "RMSE",
        "value": 16.5831,
        "threshold": 60.0,
        "direction": "lower",
        "passed": True,
        "reason": "held-out RMSE 16.5831 meets the gate 60 (lower is better; 4 rows)",
    }


def test_a_regression_above_the_rmse_gate_fails_it_naming_rmse(regression, lambda_context):
    evaluate, uri = regression
    gate = evaluate.handler(event(model_data=uri, gate={"metric": "rmse", "threshold": "1"}), lambda_context)[
        "gate"
    ]
    assert gate["passed"] is False
    assert gate["reason"] == "held-out RMSE 16.5831 is above the gate 1 (lower is better; 4 rows)"


def test_a_gate_direction_overrides_the_metrics_own(regression, lambda_context):
    evaluate, uri = regression
    gate = evaluate.handler(
        event(model_data=uri, gate={"metric": "mae", "threshold": "20", "direction": "higher"}),
        lambda_context,
    )["gate"]
    assert (gate["direction"], gate["passed"]) == ("higher", False)


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        (
            {"metric": "accuracy"},
            "GateMetric 'accuracy' is not a metric of a regression model: choose rmse or mae or r2",
        ),
        ({"metric": "rmse", "threshold": ""}, "GateThreshold is empty: set the RMSE a release must reach"),
        ({"metric": "rmse", "threshold": "sixty"}, "GateThreshold 'sixty' is not a number"),
        (
            {"metric": "rmse", "threshold": "60", "direction": "up"},
            "GateDirection 'up' must be higher, lower or auto",
        ),
    ],
)
def test_a_gate_setting_that_does_not_fit_the_model_is_named(regression, lambda_context, gate, message):
    evaluate, uri = regression
    with pytest.raises(evaluate.GateSettingError, match=message):
        evaluate.handler(event(model_data=uri, gate=gate), lambda_context)


def test_a_classifier_without_gate_settings_uses_min_accuracy(evaluate, lambda_context):
    result = evaluate.handler(
        event(gate={"metric": "accuracy", "threshold": "", "min_accuracy": 0.95}), lambda_context
    )
    assert result["problem_type"] == "classification" and result["metrics"] == {"accuracy": 0.9}
    assert result["gate"]["threshold"] == 0.95 and result["gate"]["passed"] is False
    assert result["gate"]["reason"] == "held-out accuracy 0.9 is below the gate 0.95 (10 rows)"


def test_a_champion_answering_labels_to_a_regression_is_reported_not_fatal(regression, lambda_context):
    evaluate, uri = regression
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key="data/test/test.csv", Body=b"100,1,2\n150,1,2\n200,1,2\n50,1,2\n")
    create_serving_endpoint()
    queue_endpoint_answers("setosa\nsetosa\nsetosa\nsetosa")
    champion = evaluate.handler(
        event(model_data=uri, gate={"metric": "rmse", "threshold": "60"}), lambda_context
    )["champion"]
    assert champion["rmse"] is None and champion["rows"] == 0
    assert "a regression's label and prediction are numbers" in champion["error"]
