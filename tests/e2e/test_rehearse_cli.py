"""The README's main command, run as a user runs it."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest

from mlops.approver import click, wait_for_approval_mail
from mlops.mailbox import read_message

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _post(url: str, body: bytes, api_key: str | None = None) -> tuple[int, dict]:
    assert url.startswith("http://127.0.0.1:")
    headers = {"Content-Type": "application/json", **({"x-api-key": api_key} if api_key else {})}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_serve_keeps_the_api_and_local_aws_up_for_a_person_to_try(
    served_rehearsal, processes_under, tmp_path
):
    process, stderr_path = served_rehearsal()

    def stderr_so_far() -> str:
        return stderr_path.read_text(errors="replace")

    try:
        summary, summary_line = None, ""
        for line in process.stdout:
            if line.startswith("{"):
                summary, summary_line = json.loads(line), line
                break
        assert summary is not None, stderr_so_far()
        assert summary["status"] == "SUCCEEDED"
        assert summary["prediction"] == {"result": "setosa"}
        assert summary["work_dir"] == str(tmp_path / "work")
        assert f"work dir  {tmp_path / 'work'} (kept" in stderr_so_far()
        states = summary["states"]
        assert states[:3] == ["Configure", "TrainingDistribution", "ReplicateTrainingData"]  # one instance
        assert states.index("Train") < states.index("RegisterModel") < states.index("CreateModel")
        assert summary["states"][-1] == "Released"
        assert "RequestApproval" in summary["states"]
        api = summary["api_url"] + "/v1/invokeSagemakerAPI"
        key = (tmp_path / "work" / "api-key").read_text()  # the template's default InferenceAuth is API_KEY
        assert key not in summary_line  # the curl reads it from its file
        assert _post(api, b'{"data":"4.5,1.3,0.3,0.3"}', key) == (200, {"result": "setosa"})
        assert _post(api, b'{"data":"5.9,3,5.1,1.8"}', key) == (200, {"result": "virginica"})
        status, body = _post(api, b'{"data":"abc"}', key)
        assert status == 400 and "message" in body
        # What the model cannot read is refused here, never passed on to come back as a 200 with an error.
        for unreadable in ("1e39,1.3,0.3,0.3", "1e308,1.3,0.3,0.3", "\uff14.5,1.3,0.3,0.3"):
            status, body = _post(api, json.dumps({"data": unreadable}).encode(), key)
            assert status == 400 and "value 1" in body["message"], (unreadable, body)
        assert _post(api, b'{"data":"4.5,1.3,0.3,0.3"}') == (403, {"message": "Forbidden"})
        assert _post(api, b'{"data":"4.5,1.3,0.3,0.3"}', "wrong-key")[0] == 403
        pasted = subprocess.run(["bash", "-c", summary["curl"]], capture_output=True, text=True, check=True)
        assert json.loads(pasted.stdout) == {"result": "setosa"}
        assert f"try it:   {summary['curl']}" in stderr_so_far()

        session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        local = {"endpoint_url": summary["aws_endpoint_url"]}
        execution = session.client("stepfunctions", **local).describe_execution(
            executionArn=summary["execution_arn"]
        )
        assert execution["status"] == "SUCCEEDED"
        assert json.loads(execution["output"])["approval"]["decision"] == "approved"
        # the stack's own bucket (the local AWS also holds the bucket `sam package` uploads to)
        stack = session.client("cloudformation", **local).describe_stacks(StackName="mlops-iris-staging")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Stacks"][0]["Outputs"]}
        bucket = outputs["ArtifactBucketName"]
        keys = [o["Key"] for o in session.client("s3", **local).list_objects_v2(Bucket=bucket)["Contents"]]
        assert any(k.endswith("model.tar.gz") for k in keys) and any(k.endswith(".out") for k in keys)
        answer = session.client("sagemaker-runtime", **local).invoke_endpoint(
            EndpointName=summary["endpoint_name"], ContentType="text/csv", Body=b"4.5,1.3,0.3,0.3\n"
        )
        assert answer["Body"].read().decode().strip() == "setosa"

        registry = session.client("sagemaker", **local)
        packages = registry.list_model_packages(ModelPackageGroupName="mlops-iris")["ModelPackageSummaryList"]
        version = registry.describe_model_package(ModelPackageName=summary["model_package_arn"])
        assert version["InferenceSpecification"]["SupportedContentTypes"] == ["text/csv"]
        assert version["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].endswith("-eval.json")
        assert "approved by Rehearsal Approver" in version["ApprovalDescription"]
        assert [p["ModelPackageArn"] for p in packages] == [summary["model_package_arn"]]
        assert packages[0]["ModelApprovalStatus"] == summary["approval_status"] == "Approved"
        model_name = json.loads(execution["output"])["names"]["model"]
        lineage = registry.describe_model(ModelName=model_name)["PrimaryContainer"]
        assert lineage["ModelPackageName"] == summary["model_package_arn"]

        # Nothing a decision can be forged with ever reaches a log or the CLI's output.
        secret = session.client("secretsmanager", **local).list_secrets()["SecretList"][0]["ARN"]
        signing_key = session.client("secretsmanager", **local).get_secret_value(SecretId=secret)[
            "SecretString"
        ]
        table = session.client("dynamodb", **local).list_tables()["TableNames"][0]
        items = session.client("dynamodb", **local).scan(TableName=table)["Items"]
        tokens = [item["task_token"]["S"] for item in items]
        assert tokens and all(len(t) > 20 for t in tokens)
        work = tmp_path / "work"
        logs = "".join(p.read_text(errors="replace") for p in work.rglob("*.log"))
        logs += summary_line + stderr_so_far()
        for secret_value in [signing_key, *tokens]:
            assert secret_value not in logs
        assert "approval?d=" not in logs

        subjects = [
            str(read_message(p)["Subject"]) for p in sorted((tmp_path / "work" / "outbox").glob("*.eml"))
        ]
        assert any("Approve release" in s for s in subjects)
        assert any("is live" in s for s in subjects)

        # Through the local API Gateway: the used link is spent, an altered one is refused; neither decides.
        mail, links = wait_for_approval_mail(tmp_path / "work" / "outbox", timeout=5)
        text = read_message(mail).get_body(preferencelist=("plain",)).get_content()
        assert "Training metrics:  training accuracy" in text and "Held-out accuracy: 0.9" in text
        assert f"Model package:     {summary['model_package_arn']}" in text
        live = next(
            p for p in sorted((work / "outbox").glob("*.eml")) if "is live" in str(read_message(p)["Subject"])
        )
        live_text = read_message(live).get_body(preferencelist=("plain",)).get_content()
        assert f"gh workflow run promote.yml -f model_package_arn={summary['model_package_arn']}" in live_text
        number = sorted((work / "outbox").glob("*.eml")).index(mail) + 1
        printed = subprocess.run(
            [sys.executable, "-m", "mlops", "mail", str(number), "--work-dir", str(work)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert summary["model_package_arn"] in printed and links["approve"] in printed
        drawn = subprocess.run(
            [
                *(sys.executable, "-m", "mlops", "diagram"),
                *("--execution", summary["execution_arn"], "--endpoint-url", summary["aws_endpoint_url"]),
            ],
            capture_output=True,
            text=True,
            check=True,
            env={
                **os.environ,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
            },
        ).stdout
        assert "classDef taken" in drawn and "Released" in drawn.splitlines()[-1]
        assert click(links["approve"], "Mallory", "again")[0] == 409
        cross_site = urllib.request.Request(
            links["reject"],
            data=b"approver=Mallory",
            method="POST",
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(cross_site, timeout=30)
        assert refused.value.code == 403 and "another site" in refused.value.read().decode()
        _, signature = links["reject"].split("d=", 1)[1].split(".")
        forged = links["reject"].replace(
            signature, signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
        )
        assert click(forged, "Mallory", "forged")[0] == 403
        assert (
            registry.describe_model_package(ModelPackageName=summary["model_package_arn"])[
                "ModelApprovalStatus"
            ]
            == "Approved"
        )
        assert processes_under(tmp_path / "work"), "the endpoint's serve runs until the stack stops"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        assert code == 0, stderr_so_far()[-3000:]
    assert processes_under(tmp_path / "work") == []


def test_reject_ends_failed_at_the_approval_and_creates_no_endpoint(rehearse, tmp_path):
    definition = json.loads((REPO / "statemachine" / "mlops.asl.json").read_text())
    definition["States"]["Announce"] = {
        "Type": "Pass",
        "Result": "release started",
        "ResultPath": "$.announce",
        "Next": definition["StartAt"],
    }
    definition["StartAt"] = "Announce"
    custom = tmp_path / "custom.asl.json"
    custom.write_text(json.dumps(definition))

    code, summary, stderr = rehearse("--approve", "reject", "--definition", str(custom))

    assert code == 1, stderr[-2000:]
    assert summary["status"] == "FAILED"
    assert summary["states"][0] == "Announce"  # the file is interpreted, not re-implemented
    assert summary["failed_state"] == "RequestApproval"
    assert summary["error"] == "Rejected"
    assert "rejected" in summary["cause"].lower()
    assert summary["live_endpoints"] == []
    assert "CreateEndpoint" not in summary["states"]
    assert summary["approval_status"] == "Rejected"  # the registry records the decision and the reason
    assert "rejected by" in summary["approval_description"]


def test_invalid_hyperparameter_fails_at_training_naming_it(rehearse):
    code, summary, _ = rehearse("--hyperparameters", "max_depth=-3")
    assert code == 1
    # Hyperparameters reach training as a workflow_dispatch's input, through release.yml's own steps.
    assert summary["workflow"]["event"] == "workflow_dispatch"
    assert summary["workflow"]["status"] == "success"
    assert summary["failed_state"] == "Train"
    assert "max_depth" in summary["cause"]
    assert "NotifyFailure" in summary["states"]


def test_a_release_still_running_at_the_timeout_says_where_it_waits(rehearse):
    code, summary, stderr = rehearse("--approve", "manual", "--timeout", "3")
    assert code == 1
    assert (summary["status"], summary["error"]) == ("ABORTED", "RehearsalTimedOut")
    waiting = summary["states"][-1]  # RequestApproval unless this machine is very slow
    assert summary["failed_state"] == waiting
    assert f"still running {waiting} after 3 s (--timeout)" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--parameter", "ApprovalTimeoutSeconds=soon"),
            "--parameter ApprovalTimeoutSeconds='soon': must be a number",
        ),
        (("--work-dir", "/proc/no-such-dir"), "--work-dir /proc/no-such-dir: cannot create it"),
        # A folder that exists but takes no files (sysfs is read-only, for root too).
        (("--work-dir", "/sys/kernel"), "--work-dir /sys/kernel: cannot write there"),
    ],
)
def test_a_bad_option_value_is_named_before_anything_starts(mlops_cli, args, message):
    done = mlops_cli("rehearse", *args, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert f"mlops: error: {message}" in done.stderr
    assert "Traceback" not in done.stderr and "Starting the local AWS" not in done.stderr


def test_missing_definition_file_is_a_clear_error(mlops_cli, tmp_path):
    done = mlops_cli("rehearse", "--definition", str(tmp_path / "nope.json"), timeout=60)
    assert done.returncode == 2
    assert "nope.json does not exist" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_template_file_is_a_clear_error(mlops_cli, tmp_path):
    done = mlops_cli("rehearse", "--template", str(tmp_path / "nope.yaml"), timeout=60)
    assert done.returncode == 2
    assert f"mlops: error: --template: cannot read {tmp_path / 'nope.yaml'}" in done.stderr
    assert "Traceback" not in done.stderr and "Starting the local AWS" not in done.stderr


def test_missing_oidc_template_file_is_a_clear_error(mlops_cli, tmp_path):
    done = mlops_cli("rehearse", "--oidc-template", str(tmp_path / "nope.yaml"), timeout=60)
    assert done.returncode == 2
    assert f"mlops: error: --oidc-template: cannot read {tmp_path / 'nope.yaml'}" in done.stderr
    assert "Traceback" not in done.stderr and "Starting the local AWS" not in done.stderr


def test_a_template_the_sam_transform_refuses_is_a_clear_error(mlops_cli, tmp_path):
    template = (REPO / "infra" / "template.yaml").read_text()
    for folder in ("functions", "statemachine"):  # the copy's CodeUri and DefinitionUri are relative to it
        (tmp_path / folder).symlink_to(REPO / folder)
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "template.yaml").write_text(template.replace("      Handler: app.handler\n", "", 1))
    done = mlops_cli("rehearse", "--template", str(tmp_path / "infra" / "template.yaml"), timeout=120)
    assert done.returncode == 2
    assert (
        "the SAM transform refused the template: Resource with id [EvaluateFunction] is invalid"
        in done.stderr
    )
    assert "Traceback" not in done.stderr


@pytest.mark.container
def test_image_runner_runs_train_and_serve_inside_the_image(rehearse):
    # The release gives up first and says where it stopped; then the command; both before pytest's 600 s.
    code, summary, stderr = rehearse("--runner", "image", "--timeout", "300", timeout=500)
    assert code == 0, stderr[-3000:]
    assert summary["runner"] == "image"
    assert "image: engine: " in stderr  # which engine and base image were taken is said
    assert summary["prediction"] == {"result": "setosa"}


def test_staging_release_is_promoted_to_prod_serving_the_same_package(rehearse):
    code, summary, stderr = rehearse("--stages", "staging,prod")
    assert code == 0, stderr[-3000:]
    assert summary["approval_status"] == "Approved"
    staging, prod = summary["stages"]["staging"], summary["stages"]["prod"]
    assert staging["model_package_arn"] == prod["model_package_arn"] == summary["model_package_arn"]
    assert (staging["endpoint_name"], prod["endpoint_name"]) == ("mlops-iris-staging", "mlops-iris-prod")
    promotion = summary["promotions"][0]
    assert promotion["status"] == "SUCCEEDED"
    # promote.yml, dispatched with the package, started it through its own `mlops promote` step.
    workflow = promotion["workflow"]
    assert (workflow["file"], workflow["event"], workflow["status"]) == (
        ".github/workflows/promote.yml",
        "workflow_dispatch",
        "success",
    )
    assert [s["outcome"] for s in workflow["steps"]] == ["success"] * len(workflow["steps"])
    assert workflow["outputs"]["execution_arn"] == promotion["execution_arn"]
    assert workflow["outputs"]["model_package_arn"] == summary["model_package_arn"]
    assert "Train" not in promotion["states"] and "RequestApproval" not in promotion["states"]
    assert sorted(summary["live_endpoints"]) == ["mlops-iris-prod", "mlops-iris-staging"]
    assert summary["left_over"] == []
    assert f"  prod      endpoint mlops-iris-prod, API {prod['api_url']}\n" in stderr  # the human summary too
    assert (
        "asked: " in stderr and "`scripts/rehearse --serve` keeps it up" in stderr
    )  # the curl's API is gone


def test_a_link_clicked_after_the_release_timed_out_is_gone_and_decides_nothing(served_rehearsal, tmp_path):
    """--serve keeps a failed run's local AWS up; its approval link, past its expiry, answers 410 through the
    local API Gateway and changes nothing."""
    work = tmp_path / "work"
    process, stderr_path = served_rehearsal("--approve", "manual", "--parameter", "ApprovalTimeoutSeconds=2")
    try:
        summary = next((json.loads(line) for line in process.stdout if line.startswith("{")), None)
        assert summary is not None, stderr_path.read_text()
        assert (summary["status"], summary["error"]) == ("FAILED", "ApprovalTimedOut")
        assert "Serving until Ctrl-C" in stderr_path.read_text()

        _, links = wait_for_approval_mail(work / "outbox", timeout=5)
        status, page = click(links["approve"], "Late Larry", "too late")
        assert status == 410
        assert "expired" in page.lower()

        local = {"endpoint_url": summary["aws_endpoint_url"], "region_name": "us-east-1"}
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
        registry = session.client("sagemaker", **local)
        package = registry.describe_model_package(ModelPackageName=summary["model_package_arn"])
        assert package["ModelApprovalStatus"] != "Approved"
        assert registry.list_endpoints()["Endpoints"] == []
        # No endpoint: the API says so with a 503, not a 200 whose result is an error message.
        api = summary["api_url"] + "/v1/invokeSagemakerAPI"
        status, body = _post(api, b'{"data":"4.5,1.3,0.3,0.3"}', (work / "api-key").read_text())
        assert (status, body["message"]) == (503, "the model endpoint is not available; try again later")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 1, stderr_path.read_text()[-3000:]


def test_ctrl_c_during_a_release_stops_everything_without_a_traceback(
    started_rehearsal, processes_under, tmp_path
):
    process, stderr_path = started_rehearsal("--approve", "manual")
    deadline = time.monotonic() + 120
    while "→ RequestApproval" not in stderr_path.read_text() and time.monotonic() < deadline:
        assert process.poll() is None, stderr_path.read_text()[-3000:]
        time.sleep(0.1)
    assert processes_under(tmp_path / "work"), "the transform's or the warm interpreter's programs run"
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=60)
    stderr = stderr_path.read_text()
    assert code == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "MUST NOT begin with the prefix" not in stderr and max(map(len, stderr.splitlines())) <= 500
    assert stderr.rstrip().endswith(
        "Interrupted: stopping the local AWS and the programs it runs\nmlops: interrupted"
    )
    assert processes_under(tmp_path / "work") == []
