"""Local equivalents of the actions the workflows use: one small function each, keyed by the action's name.

Each takes the step's ActionCall (its ``with:`` inputs, environment and the job's env/PATH setters) and
returns the outputs the real action would; a refusal is an ActionFailed whose message the step's log shows.
``WebIdentityCredentials`` is configure-aws-credentials: the job's OIDC token (from the local issuer) exchanged
for the role's keys through the local STS, which checks the role's trust policy as AWS does.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .workflow import Action, ActionCall, ActionFailed

SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")  # AWS STS's RoleSessionName rule

PYTHON_SHIM = """#!/usr/bin/env bash
# python as the rehearsal's runner gives it: this interpreter ({python}), except `-m venv` and `-m pip`, which
# mlops.local.pyshim answers without making an environment or downloading anything.
if [ "${{1-}}" = -m ] && {{ [ "${{2-}}" = venv ] || [ "${{2-}}" = pip ]; }}; then
  exec "{python}" -m mlops.local.pyshim "$0" "${{@:2}}"
fi
exec "{python}" "$@"
"""


def _git(workspace: Path, *args: str, git_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    prefix = ["git", f"--git-dir={git_dir}", f"--work-tree={workspace}"] if git_dir else ["git"]
    return subprocess.run([*prefix, *args], cwd=workspace, capture_output=True, text=True, check=False)


def checkout(call: ActionCall) -> dict[str, str]:
    """The working tree is already there; what checkout adds is the repository as GitHub's runner has it.

    A new git dir in RUNNER_TEMP borrows this repository's objects (alternates) and holds what checkout
    leaves: HEAD detached at the commit and ``origin/main`` at it (the run is a push of this commit to main),
    with the history cut at that commit unless ``fetch-depth: 0``. Later steps get it through GIT_DIR and
    GIT_WORK_TREE, so this repository's own refs are never touched."""
    for unsupported in ("path", "repository", "submodules", "sparse-checkout", "lfs"):
        if call.inputs.get(unsupported) not in (None, "", "false"):
            raise ActionFailed(f"actions/checkout: the local runner does not emulate {unsupported}:")
    head = _git(call.workspace, "rev-parse", "--verify", "HEAD^{commit}")
    if head.returncode != 0:
        raise ActionFailed(
            f"{call.workspace} is not a git checkout: release.yml resolves the commit with git; rehearse from "
            "a clone of the repository"
        )
    sha = head.stdout.strip()
    ref = call.inputs.get("ref", "")
    if ref:
        wanted = _git(call.workspace, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").stdout.strip()
        if wanted != sha:
            raise ActionFailed(
                f"ref {ref} is {wanted[:12] or 'not a commit here'}, but the rehearsal runs the working tree at "
                f"{sha[:12]}: check out {ref} first (git switch --detach {ref}) and rehearse again"
            )
    depth = str(call.inputs.get("fetch-depth", "1"))
    if depth not in ("0", "1"):
        raise ActionFailed(f"actions/checkout: fetch-depth {depth}: the local runner emulates 0 and 1")
    common = Path(_git(call.workspace, "rev-parse", "--git-common-dir").stdout.strip())
    common = (common if common.is_absolute() else call.workspace / common).resolve()
    objects = common / "objects"
    git_dir = call.runner_temp / "checkout.git"
    if _git(call.workspace, "init", "--quiet", "--bare", str(git_dir)).returncode != 0:
        raise ActionFailed(f"git init {git_dir} failed")
    (git_dir / "objects" / "info" / "alternates").write_text(f"{objects}\n")
    (git_dir / "HEAD").write_text(f"{sha}\n")
    # The history ends where this clone's does (a shallow CI checkout), or at the commit for fetch-depth 1.
    shallow = (common / "shallow").read_text().split() if (common / "shallow").is_file() else []
    if depth == "1":
        shallow.append(sha)
    if shallow:
        (git_dir / "shallow").write_text("".join(f"{line}\n" for line in sorted(set(shallow))))
    for args in (
        ("config", "core.bare", "false"),
        ("update-ref", "refs/remotes/origin/main", sha),
        ("read-tree", sha),
    ):
        done = _git(call.workspace, *args, git_dir=git_dir)
        if done.returncode != 0:
            raise ActionFailed(f"git {' '.join(args)}: {done.stderr.strip()}")
    call.set_env("GIT_DIR", str(git_dir))
    call.set_env("GIT_WORK_TREE", str(call.workspace))
    call.record["checkout"] = {"commit": sha, "fetch_depth": int(depth), "git_dir": str(git_dir)}
    call.log(f"HEAD is now at {sha[:12]} (the working tree as it is; origin/main = {sha[:12]})")
    return {"ref": ref or sha, "commit": sha}


def setup_python(call: ActionCall) -> dict[str, str]:
    """This interpreter, as ``python``/``python3`` on PATH (through the venv/pip shim)."""
    asked = str(call.inputs.get("python-version", ""))
    have = f"{sys.version_info.major}.{sys.version_info.minor}"
    if asked and not f"{have}.{sys.version_info.micro}".startswith(asked):
        call.log(
            f"::warning::python-version {asked}: the rehearsal runs the steps with its own Python {have}"
        )
    tool = call.runner_temp / "setup-python" / "bin"
    tool.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        (tool / name).write_text(PYTHON_SHIM.format(python=sys.executable))
        (tool / name).chmod(0o755)
    call.add_path(str(tool))
    call.record["python"] = {"asked": asked, "used": sys.version.split()[0], "executable": sys.executable}
    return {"python-version": sys.version.split()[0], "python-path": str(tool / "python")}


class WebIdentityCredentials:
    """aws-actions/configure-aws-credentials with ``role-to-assume`` and GitHub's OIDC token, against the local
    AWS: the token says which repository, ref and environment the job runs for; STS refuses a role whose trust
    policy does not admit them."""

    def __init__(self, issuer, endpoint_url: str) -> None:
        self.issuer, self.endpoint_url = issuer, endpoint_url

    def __call__(self, call: ActionCall) -> dict[str, str]:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config
        from botocore.exceptions import ClientError

        region, role = call.inputs.get("aws-region", ""), call.inputs.get("role-to-assume", "")
        session = call.inputs.get("role-session-name", "GitHubActions")
        if not region:
            raise ActionFailed("Input required and not supplied: aws-region")
        if not role.startswith("arn:aws:iam::"):
            raise ActionFailed(f"role-to-assume {role!r} is not a role ARN (is the repository variable set?)")
        if not SESSION_NAME.match(session):
            raise ActionFailed(
                f"role-session-name {session!r}: 2-64 characters of letters, digits and +=,.@_-"
            )
        token = self.issuer.issue(
            repository=call.env.get("GITHUB_REPOSITORY", ""),
            ref=call.env.get("GITHUB_REF", ""),
            environment=call.environment,
            event_name=call.env.get("GITHUB_EVENT_NAME", "push"),
            workflow=call.env.get("GITHUB_WORKFLOW", ""),
            audience=call.inputs.get("audience", "sts.amazonaws.com"),
        )
        sts = boto3.client(
            "sts",
            endpoint_url=self.endpoint_url,
            region_name=region,
            config=Config(signature_version=UNSIGNED),
        )
        try:
            credentials = sts.assume_role_with_web_identity(
                RoleArn=role, RoleSessionName=session, WebIdentityToken=token
            )["Credentials"]
        except ClientError as error:
            raise ActionFailed(
                f"Could not assume role with OIDC: {error.response['Error']['Message']}"
            ) from None
        for name, value in {
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }.items():
            call.set_env(name, value)
        call.record["credentials"] = {
            "role_to_assume": role,
            "role_session_name": session,
            "region": region,
            "assumed": True,
            "subject": self.issuer.subject_of(token),
        }
        return {"aws-account-id": role.split(":")[4]}


def setup_buildx(call: ActionCall) -> dict[str, str]:
    """Nothing to set up: the image comes from the rehearsal's runner."""
    return {}


class LocalImageActions:
    """ECR login and build-push against the local ECR at ``endpoint_url``, signed with the step's credentials
    (the role configure-aws-credentials assumed), as docker's pushes are."""

    def __init__(
        self,
        endpoint_url: str,
        repository: str,
        config_digest: Callable[[], str],
        local_image_for: Callable | None,
    ):
        self.endpoint_url, self.repository = endpoint_url, repository
        self.config_digest, self.local_image_for = config_digest, local_image_for

    def ecr(self, call: ActionCall):
        import boto3

        if not call.env.get("AWS_ACCESS_KEY_ID"):
            raise ActionFailed("no AWS credentials: run aws-actions/configure-aws-credentials first")
        return boto3.client(
            "ecr",
            endpoint_url=self.endpoint_url,
            region_name=call.env.get("AWS_REGION") or call.env.get("AWS_DEFAULT_REGION"),
            aws_access_key_id=call.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=call.env.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=call.env.get("AWS_SESSION_TOKEN"),
        )

    def registry(self, ecr) -> str:
        from botocore.exceptions import ClientError

        try:
            endpoint = ecr.get_authorization_token()["authorizationData"][0]["proxyEndpoint"]
        except ClientError as error:
            raise ActionFailed(f"ECR login: {error.response['Error']['Message']}") from None
        return endpoint.split("://", 1)[-1]

    def ecr_login(self, call: ActionCall) -> dict[str, str]:
        registry = self.registry(self.ecr(call))
        call.log(f"Logged in to {registry} (the local ECR)")
        return {"registry": registry}

    def build_push(self, call: ActionCall) -> dict[str, str]:
        """The rehearsal's image for each tag: the process runner's programs come from container/ (the tag is
        registered with a digest of those sources), the image runner's from the image it built locally."""
        context = call.workspace / call.inputs.get("context", ".")
        if not (context / "Dockerfile").is_file():
            raise ActionFailed(f"context {call.inputs.get('context')}: no Dockerfile in {context}")
        tags = [t.strip() for t in re.split(r"[,\n]", call.inputs.get("tags", "")) if t.strip()]
        if not tags:
            raise ActionFailed("docker/build-push-action: no tags")
        if call.inputs.get("push", "false") != "true":
            call.log("push: false, nothing pushed")
            return {}
        ecr = self.ecr(call)
        registry, digest = self.registry(ecr), ""
        for tag in tags:
            host, _, rest = tag.partition("/")
            repository, _, version = rest.rpartition(":")
            if host != registry or repository != self.repository or not version:
                raise ActionFailed(f"{tag}: the local ECR has {registry}/{self.repository}:TAG only")
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": 0,
                    "digest": self.config_digest(),
                },
                "layers": [],
            }
            from botocore.exceptions import ClientError

            body = json.dumps(manifest)
            try:  # a registry's digest of a manifest is the SHA-256 of its bytes
                pushed = ecr.put_image(
                    repositoryName=repository,
                    imageTag=version,
                    imageManifest=body,
                    imageDigest=f"sha256:{hashlib.sha256(body.encode()).hexdigest()}",
                )
            except ClientError as error:
                raise ActionFailed(f"push {tag}: {error}") from error
            digest = pushed["image"]["imageId"]["imageDigest"]
            served_by = self.local_image_for(tag) if self.local_image_for else "container/ (process runner)"
            call.log(f"pushed {tag} ({digest}); the rehearsal runs it from {served_by}")
            call.record.setdefault("pushed", []).append(tag)
        return {
            "digest": digest,
            "imageid": manifest["config"]["digest"],
            "metadata": json.dumps({"tags": tags}),
        }


def local_actions(image_actions: LocalImageActions, credentials: WebIdentityCredentials) -> dict[str, Action]:
    return {
        "actions/checkout": checkout,
        "actions/setup-python": setup_python,
        "aws-actions/configure-aws-credentials": credentials,
        "aws-actions/amazon-ecr-login": image_actions.ecr_login,
        "docker/setup-buildx-action": setup_buildx,
        "docker/build-push-action": image_actions.build_push,
    }
