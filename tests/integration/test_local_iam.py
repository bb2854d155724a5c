"""The local AWS refuses what AWS would: web identity checked by the role's trust policy, every call by the
signing role's policies, with AWS's errors in each service's protocol."""

import json
import os
from pathlib import Path

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from mlops.local import authorizer, oidc, principals
from mlops.local.actions import LocalImageActions, WebIdentityCredentials
from mlops.local.workflow import ActionCall, ActionFailed

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REPOSITORY = "acme/app"
DEPLOYER = principals.ReadOnlyCredentials("testing", "testing", None)


def _trust(subject: str, provider: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                        "token.actions.githubusercontent.com:sub": subject,
                    }
                },
            }
        ],
    }


RELEASE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Login", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {
            "Sid": "Push",
            "Effect": "Allow",
            "Action": ["ecr:PutImage", "ecr:DescribeImages"],
            "Resource": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app",
        },
        {
            "Sid": "ReadData",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::app-data/data/*",
        },
    ],
}


@pytest.fixture
def local_aws(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": DEPLOYER.access_key,
        "AWS_SECRET_ACCESS_KEY": DEPLOYER.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    issuer = oidc.LocalIssuer()
    checks = authorizer.Authorizer(DEPLOYER.access_key, issuer)
    authorizer.install(checks)
    principals.install(DEPLOYER)
    try:
        iam = boto3.client("iam", endpoint_url=url)
        provider = iam.create_open_id_connect_provider(
            Url=oidc.ISSUER, ClientIDList=["sts.amazonaws.com"], ThumbprintList=["a" * 40]
        )["OpenIDConnectProviderArn"]
        role = iam.create_role(
            RoleName="release",
            AssumeRolePolicyDocument=json.dumps(_trust(f"repo:{REPOSITORY}:ref:refs/heads/main", provider)),
        )["Role"]["Arn"]
        iam.put_role_policy(
            RoleName="release", PolicyName="release", PolicyDocument=json.dumps(RELEASE_POLICY)
        )
        boto3.client("ecr", endpoint_url=url).create_repository(
            repositoryName="app", imageTagMutability="IMMUTABLE"
        )
        s3 = boto3.client("s3", endpoint_url=url)
        s3.create_bucket(Bucket="app-data")
        for key in ("data/train.csv", "secret/keys.csv"):
            s3.put_object(Bucket="app-data", Key=key, Body=b"1,2\n")
        yield {"url": url, "issuer": issuer, "checks": checks, "role": role, "provider": provider}
    finally:
        principals.uninstall()
        authorizer.uninstall()
        server.stop()
        moto_api_backend.reset()


def job_step(
    tmp_path: Path, *, ref: str = "refs/heads/main", repository: str = REPOSITORY, environment=None, **inputs
):
    env = {"GITHUB_REPOSITORY": repository, "GITHUB_REF": ref, "GITHUB_EVENT_NAME": "push"}
    return ActionCall(
        step="step",
        inputs=dict(inputs),
        env=env,
        workspace=REPO,
        runner_temp=tmp_path,
        set_env=env.__setitem__,
        add_path=lambda folder: None,
        record={},
        log=lambda line: None,
        environment=environment,
    )


def assume(local_aws, tmp_path, **claims) -> ActionCall:
    call = job_step(tmp_path, **claims, **{"aws-region": "us-east-1", "role-to-assume": local_aws["role"]})
    WebIdentityCredentials(local_aws["issuer"], local_aws["url"])(call)
    return call


def client_as(local_aws, call: ActionCall, service: str):
    return boto3.client(
        service,
        endpoint_url=local_aws["url"],
        aws_access_key_id=call.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=call.env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=call.env["AWS_SESSION_TOKEN"],
    )


def test_a_job_of_the_trusted_repository_and_branch_assumes_the_role(local_aws, tmp_path):
    call = assume(local_aws, tmp_path)
    assert call.env["AWS_ACCESS_KEY_ID"].startswith("ASIA") and call.env["AWS_SESSION_TOKEN"]
    assert call.record["credentials"] == {
        "role_to_assume": local_aws["role"],
        "role_session_name": "GitHubActions",
        "region": "us-east-1",
        "assumed": True,
        "subject": f"repo:{REPOSITORY}:ref:refs/heads/main",
    }
    identity = client_as(local_aws, call, "sts").get_caller_identity()  # needs no permission on AWS either
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/release/GitHubActions"


@pytest.mark.parametrize(
    "claims",
    [
        {"repository": "someone/fork"},
        {"ref": "refs/heads/feature"},
        {"ref": "refs/pull/7/merge"},
        {"environment": "production"},  # the role trusts the branch, not an environment
    ],
    ids=["other-repository", "other-branch", "pull-request", "environment"],
)
def test_a_token_for_another_repository_ref_or_environment_is_refused(local_aws, tmp_path, claims):
    with pytest.raises(ActionFailed, match="Not authorized to perform sts:AssumeRoleWithWebIdentity"):
        assume(local_aws, tmp_path, **claims)
    denied = local_aws["checks"].summary()["denied"]
    assert denied and denied[-1]["action"] == "sts:AssumeRoleWithWebIdentity"


def test_an_environment_scoped_role_takes_only_jobs_in_that_environment(local_aws, tmp_path):
    iam = boto3.client("iam", endpoint_url=local_aws["url"])
    iam.update_assume_role_policy(
        RoleName="release",
        PolicyDocument=json.dumps(_trust(f"repo:{REPOSITORY}:environment:production", local_aws["provider"])),
    )
    assert assume(local_aws, tmp_path, environment="production").env["AWS_SESSION_TOKEN"]
    with pytest.raises(ActionFailed, match="Not authorized"):
        assume(local_aws, tmp_path)  # the same branch, without the environment


def test_a_token_the_issuer_did_not_sign_is_refused(local_aws, tmp_path):
    sts = boto3.client("sts", endpoint_url=local_aws["url"])
    good = local_aws["issuer"].issue(REPOSITORY, "refs/heads/main")
    header, _, signature = good.split(".")
    # the trusted repository's signature on claims edited afterwards (here: a fork claiming the repository)
    edited = local_aws["issuer"].issue("someone/fork", "refs/heads/main").split(".")[1]
    for token in (
        oidc.LocalIssuer().issue(REPOSITORY, "refs/heads/main"),
        f"{header}.{edited}.{signature}",
    ):
        with pytest.raises(ClientError) as refused:
            sts.assume_role_with_web_identity(
                RoleArn=local_aws["role"], RoleSessionName="forged", WebIdentityToken=token
            )
        assert refused.value.response["Error"]["Code"] == "InvalidIdentityToken"


def test_each_call_is_checked_against_the_role_policies_with_its_real_resource(local_aws, tmp_path):
    call = assume(local_aws, tmp_path)
    s3 = client_as(local_aws, call, "s3")
    assert s3.get_object(Bucket="app-data", Key="data/train.csv")["Body"].read() == b"1,2\n"
    with pytest.raises(ClientError) as refused:
        s3.get_object(Bucket="app-data", Key="secret/keys.csv")
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert (
        "assumed-role/release/GitHubActions is not authorized to perform: s3:GetObject on resource: "
        "arn:aws:s3:::app-data/secret/keys.csv because no identity-based policy allows" in error["Message"]
    )
    with pytest.raises(ClientError) as refused:  # awsJson: AccessDeniedException, HTTP 400
        client_as(local_aws, call, "sagemaker").describe_training_job(TrainingJobName="job")
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    summary = local_aws["checks"].summary()
    assert summary["principals"] == {local_aws["role"]: summary["calls"]}
    assert [d["action"] for d in summary["denied"]] == ["s3:GetObject", "sagemaker:DescribeTrainingJob"]


def test_a_removed_statement_is_refused_at_the_next_call(local_aws, tmp_path):
    call = assume(local_aws, tmp_path)
    ecr = client_as(local_aws, call, "ecr")
    ecr.get_authorization_token()
    policy = {**RELEASE_POLICY, "Statement": [s for s in RELEASE_POLICY["Statement"] if s["Sid"] != "Login"]}
    boto3.client("iam", endpoint_url=local_aws["url"]).put_role_policy(
        RoleName="release", PolicyName="release", PolicyDocument=json.dumps(policy)
    )
    with pytest.raises(ClientError, match="ecr:GetAuthorizationToken"):
        ecr.get_authorization_token()


def test_keys_the_local_sts_did_not_issue_are_invalid(local_aws):
    stranger = boto3.client(
        "s3",
        endpoint_url=local_aws["url"],
        aws_access_key_id="ASIAXXXXXXXXXXXXXXXX",
        aws_secret_access_key="x",
    )
    with pytest.raises(ClientError) as refused:
        stranger.list_objects_v2(Bucket="app-data")
    assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_a_thread_acting_as_a_role_signs_every_default_session_client_with_its_keys(local_aws):
    s3 = boto3.client("s3", endpoint_url=local_aws["url"])  # created before, as the functions' clients are
    keys = boto3.client("sts", endpoint_url=local_aws["url"]).assume_role(
        RoleArn=local_aws["role"], RoleSessionName="function"
    )["Credentials"]
    role = principals.Principal(
        local_aws["role"],
        principals.ReadOnlyCredentials(keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"]),
    )
    with principals.acting_as(role), pytest.raises(ClientError, match="AccessDenied"):
        s3.get_object(Bucket="app-data", Key="secret/keys.csv")
    assert s3.get_object(Bucket="app-data", Key="secret/keys.csv")["Body"].read()  # the deployer again


def test_a_service_cannot_take_a_role_whose_trust_policy_does_not_name_it(local_aws):
    roles = principals.Principals(
        boto3.client("iam", endpoint_url=local_aws["url"]), boto3.client("sts", endpoint_url=local_aws["url"])
    )
    with pytest.raises(principals.TrustRefused, match=r"lambda\.amazonaws\.com cannot assume"):
        roles.for_service(local_aws["role"], "lambda.amazonaws.com")


def test_ecr_login_and_push_sign_as_the_assumed_role_and_ecr_refuses_what_it_would(local_aws, tmp_path):
    images = LocalImageActions(local_aws["url"], "app", lambda: "sha256:" + "1" * 64, None)
    with pytest.raises(ActionFailed, match="configure-aws-credentials first"):
        images.ecr_login(job_step(tmp_path))
    call = assume(local_aws, tmp_path)
    registry = images.ecr_login(call)["registry"]
    assert registry == f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
    push = job_step(tmp_path, context="container", push="true", tags=f"{registry}/app:abc")
    push.env.update({k: v for k, v in call.env.items() if k.startswith("AWS_")})
    pushed = images.build_push(push)
    described = client_as(local_aws, call, "ecr").describe_images(
        repositoryName="app", imageIds=[{"imageTag": "abc"}]
    )
    assert pushed["digest"] == described["imageDetails"][0]["imageDigest"]
    with pytest.raises(ActionFailed, match="already exists"):  # ECR itself refuses a second push of the tag
        images.build_push(push)
    elsewhere = job_step(tmp_path, context="container", push="true", tags="docker.io/someone/x:abc")
    elsewhere.env.update(push.env)
    with pytest.raises(ActionFailed, match="the local ECR has"):
        images.build_push(elsewhere)
    assert (
        os.environ["AWS_ACCESS_KEY_ID"] == DEPLOYER.access_key
    )  # the step's keys never leak into the process


def test_api_gateway_invokes_a_function_only_as_its_resource_policy_allows(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    from mlops.local.stack import LocalStack

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    stack = LocalStack(work_dir=tmp_path / "work").start()
    try:
        request = urllib.request.Request(
            f"{stack.api_url}/v1/invokeSagemakerAPI",
            data=b'{"data":"4.5,1.3,0.3,0.3"}',
            headers={"Content-Type": "application/json", "x-api-key": stack.api_key_file.read_text()},
        )

        def status() -> tuple[int, dict]:
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    return answer.status, json.loads(answer.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read())

        assert status()[0] == 503  # the function ran: there is no endpoint yet
        function = stack.created.physical["InferenceFunction"]
        lam = stack.client("lambda")
        for statement in json.loads(lam.get_policy(FunctionName=function)["Policy"])["Statement"]:
            lam.remove_permission(FunctionName=function, StatementId=statement["Sid"])
        assert status() == (500, {"message": "Internal server error"})  # as API Gateway answers then
        denied = stack.authorizer.summary()["denied"]
        assert denied[-1]["principal"] == "apigateway.amazonaws.com"
        assert f"{function} allows apigateway.amazonaws.com" in denied[-1]["message"]
    finally:
        stack.stop()


def test_the_access_stacks_release_role_takes_only_main_of_this_repository(tmp_path, monkeypatch):
    from mlops.local.release_workflow import repository_name
    from mlops.local.stack import LocalStack

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    stack = LocalStack(work_dir=tmp_path / "work").start()
    try:
        sts = boto3.client(
            "sts",
            endpoint_url=stack.endpoint_url,
            region_name="us-east-1",
            config=Config(signature_version=UNSIGNED),
        )

        def assume(repository: str, ref: str, environment: str | None = None) -> str:
            token = stack.issuer.issue(repository, ref, environment)
            try:
                sts.assume_role_with_web_identity(
                    RoleArn=stack.release_role_arn, RoleSessionName="probe", WebIdentityToken=token
                )
                return "assumed"
            except ClientError as error:
                return error.response["Error"]["Code"]

        this = repository_name()
        assert assume(this, "refs/heads/main") == "assumed"
        assert assume("someone/fork", "refs/heads/main") == "AccessDenied"
        assert assume(this, "refs/heads/feature") == "AccessDenied"
        assert assume(this, "refs/heads/main", environment="production") == "AccessDenied"
    finally:
        stack.stop()
