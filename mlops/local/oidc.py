"""GitHub's OIDC token issuer, locally: the token a workflow job gets for AssumeRoleWithWebIdentity.

The claims are GitHub's (sub `repo:OWNER/REPO:ref:refs/heads/BRANCH`, or `...:environment:NAME` for a job
that declares an environment; aud, repository, ref, environment, event_name, workflow). AWS checks a token's
signature against the provider's published keys; the local issuer signs with HMAC-SHA256 and a key of its
own, so a token it did not issue (or one edited after) is refused as AWS refuses a forged one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

from moto.iam.models import iam_backends

from .iam import oidc_context
from .template import ACCOUNT_ID

ISSUER = "https://token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"  # what aws-actions/configure-aws-credentials asks for
LIFETIME_SECONDS = 300  # GitHub's tokens expire after a few minutes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def subject(repository: str, ref: str, environment: str | None) -> str:
    """GitHub's `sub` claim: the environment when the job declares one, else the ref."""
    return f"repo:{repository}:environment:{environment}" if environment else f"repo:{repository}:ref:{ref}"


class LocalIssuer:
    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def issue(
        self,
        repository: str,
        ref: str,
        environment: str | None = None,
        event_name: str = "push",
        workflow: str = "",
        audience: str = AUDIENCE,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": audience,
            "sub": subject(repository, ref, environment),
            "repository": repository,
            "repository_owner": repository.split("/", 1)[0],
            "ref": ref,
            "environment": environment,
            "event_name": event_name,
            "workflow": workflow,
            "iat": now,
            "nbf": now,
            "exp": now + LIFETIME_SECONDS,
        }
        return self.sign({k: v for k, v in claims.items() if v is not None})

    def sign(self, claims: Mapping[str, Any]) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(dict(claims), separators=(",", ":")).encode())
        signature = hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}"

    @staticmethod
    def subject_of(token: str) -> str | None:
        """The `sub` a token claims (read, not verified: for records only)."""
        try:
            return json.loads(_unb64(token.split(".")[1])).get("sub")
        except (ValueError, IndexError, AttributeError):
            return None

    def verify(self, token: str) -> dict[str, Any] | None:
        """The token's claims if this issuer signed it and it is within its lifetime; else None."""
        try:
            header, payload, signature = token.split(".")
            expected = hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(signature)):
                return None
            claims = json.loads(_unb64(payload))
        except (ValueError, TypeError):
            return None
        now = time.time()
        if not isinstance(claims, dict) or not claims.get("nbf", 0) - 60 <= now <= claims.get("exp", 0):
            return None
        return claims


def provider_arn_for(issuer: str, audience: Any) -> str | None:
    """The account's IAM OIDC provider for this issuer, if the token's audience is one of its client ids."""
    url = issuer.removeprefix("https://").rstrip("/")
    audiences = audience if isinstance(audience, list) else [audience]
    for arn, provider in iam_backends[ACCOUNT_ID]["aws"].open_id_providers.items():
        if provider.url.rstrip("/") == url and any(a in provider.client_id_list for a in audiences):
            return arn
    return None


def condition_context(claims: Mapping[str, Any]) -> dict[str, Any]:
    return oidc_context(claims.get("iss", ISSUER), claims)
