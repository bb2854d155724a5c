"""Who signs each call to the local AWS: every part of the product that shares this process acts as its own role.

On AWS the state machine, each Lambda function and each SageMaker job sign with their own role's temporary
keys. Here they share one process, so each thread acts as one principal at a time (`acting_as`), and the
default boto3 session's credentials are whatever the current thread acts as: a client created once at import
(as the functions do) still signs each call with the keys of whoever makes it. A thread acting as nobody
signs with the deployer's keys (the account holder who ran `sam deploy`).

A service takes a role only if the role's trust policy names it, as AWS checks (`TrustRefused` otherwise).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
from botocore.credentials import Credentials, ReadOnlyCredentials

from .authorizer import Authorizer, Call
from .iam import trust_allows

_acting = threading.local()


class TrustRefused(PermissionError):
    """A role's trust policy does not let the service (or web identity) assume it."""


@dataclass(frozen=True)
class Principal:
    role_arn: str
    keys: ReadOnlyCredentials
    session_arn: str | None = None  # arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION


class ActingCredentials(Credentials):
    """The current thread's principal's keys, else the deployer's."""

    def __init__(self, deployer: ReadOnlyCredentials) -> None:
        super().__init__(deployer.access_key, deployer.secret_key, deployer.token)
        self._deployer = deployer

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        acting = current()
        return acting.keys if acting else self._deployer


def current() -> Principal | None:
    return getattr(_acting, "principal", None)


@contextlib.contextmanager
def acting_as(principal: Principal | None) -> Iterator[None]:
    """Calls made by this thread inside the block sign as `principal` (None: as the deployer)."""
    previous = current()
    _acting.principal = principal
    try:
        yield
    finally:
        _acting.principal = previous


def install(deployer: ReadOnlyCredentials) -> None:
    """Every client of boto3's default session signs as the acting principal from now on."""
    boto3.setup_default_session()
    boto3.DEFAULT_SESSION._session._credentials = ActingCredentials(deployer)


def uninstall() -> None:
    boto3.DEFAULT_SESSION = None


class Principals:
    """Temporary keys per (role, service), assumed through the local STS after the role's trust policy
    allowed the service; `iam` is a deployer's IAM client, `sts` a deployer's STS client; `checks` keeps each
    assumption beside the calls (the least-privilege report reads trust statements from them too)."""

    def __init__(self, iam, sts, checks: Authorizer | None = None) -> None:
        self.iam, self.sts, self.checks = iam, sts, checks
        self._assumed: dict[tuple[str, str], Principal] = {}
        self._lock = threading.Lock()

    def for_service(self, role_arn: str, service: str) -> Principal:
        """The role as `service` (e.g. "lambda.amazonaws.com") acts with it once it assumed it."""
        with self._lock:
            if (role_arn, service) not in self._assumed:
                trust = self.iam.get_role(RoleName=role_arn.rsplit("/", 1)[-1])["Role"][
                    "AssumeRolePolicyDocument"
                ]
                decision = trust_allows(trust, "Service", service, "sts:AssumeRole")
                if not decision.allowed:
                    raise TrustRefused(
                        f"{service} cannot assume {role_arn}: its trust policy does not allow it"
                    )
                if self.checks is not None:
                    call = Call(
                        role_arn, "sts", "AssumeRole", {"RoleArn": role_arn}, self.sts.meta.region_name
                    )
                    self.checks.record_trust(call, ("Service", service), "sts:AssumeRole", {})
                session = service.split(".", 1)[0]
                assumed = self.sts.assume_role(RoleArn=role_arn, RoleSessionName=f"local-{session}")
                credentials = assumed["Credentials"]
                keys = ReadOnlyCredentials(
                    credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
                )
                self._assumed[(role_arn, service)] = Principal(
                    role_arn, keys, assumed["AssumedRoleUser"]["Arn"]
                )
            return self._assumed[(role_arn, service)]
