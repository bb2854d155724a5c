"""Signed, expiring, action-bound approval links.

A link carries `d=<payload>.<signature>`: the payload is base64url JSON `{"i": approval id, "a": action,
"e": expiry epoch}` and the signature is base64url HMAC-SHA256 over the encoded payload text. The task
token never leaves DynamoDB; a link only names a pending approval and the one action it may take.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

ACTIONS = ("approve", "reject")
# A real link is about 120 characters; anything much longer is not ours.
MAX_LINK_DATA_CHARS = 512


class LinkError(Exception):
    """The link cannot be used."""


class InvalidLinkError(LinkError):
    """Malformed, forged or altered: nothing about it can be trusted."""


class ExpiredLinkError(LinkError):
    """Authentic, but past its expiry."""

    def __init__(self, claim: LinkClaim):
        super().__init__(f"approval {claim.approval_id}: link expired")
        self.claim = claim


@dataclass(frozen=True)
class LinkClaim:
    approval_id: str
    action: str
    expires_at: int


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidLinkError("not base64url") from exc


def _signature(encoded_payload: str, key: bytes) -> str:
    return _b64encode(hmac.new(key, encoded_payload.encode("ascii"), hashlib.sha256).digest())


def sign(claim: LinkClaim, key: bytes) -> str:
    """The `d` value for a link that lets its holder take `claim.action` until `claim.expires_at`."""
    if claim.action not in ACTIONS:
        raise ValueError(f"unknown action {claim.action!r}")
    payload = json.dumps(
        {"i": claim.approval_id, "a": claim.action, "e": int(claim.expires_at)},
        separators=(",", ":"),
        sort_keys=True,
    )
    encoded = _b64encode(payload.encode("utf-8"))
    return f"{encoded}.{_signature(encoded, key)}"


def verify(data: str | None, key: bytes, now: float) -> LinkClaim:
    """The claim in `data`, or InvalidLinkError (403) / ExpiredLinkError (410), checked in that order."""
    if not data or len(data) > MAX_LINK_DATA_CHARS or not data.isascii() or data.count(".") != 1:
        raise InvalidLinkError("malformed link")
    encoded, signature = data.split(".")
    if not hmac.compare_digest(signature, _signature(encoded, key)):
        raise InvalidLinkError("bad signature")
    claim = _claim_from(_b64decode(encoded))
    if now >= claim.expires_at:
        raise ExpiredLinkError(claim)
    return claim


def _claim_from(raw: bytes) -> LinkClaim:
    try:
        payload: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidLinkError("payload is not JSON") from exc
    if not isinstance(payload, dict) or set(payload) != {"i", "a", "e"}:
        raise InvalidLinkError("unexpected payload")
    approval_id, action, expires_at = payload["i"], payload["a"], payload["e"]
    if not isinstance(approval_id, str) or not approval_id or action not in ACTIONS:
        raise InvalidLinkError("unexpected payload")
    if not isinstance(expires_at, int) or isinstance(expires_at, bool):
        raise InvalidLinkError("unexpected payload")
    return LinkClaim(approval_id=approval_id, action=action, expires_at=expires_at)


def link_url(api_url: str, data: str) -> str:
    # `data` is base64url plus one dot: nothing in it needs percent-encoding.
    return f"{api_url.rstrip('/')}/approval?d={data}"


def load_signing_key(secrets_client: Any, secret_arn: str) -> bytes:
    secret = secrets_client.get_secret_value(SecretId=secret_arn)
    if secret.get("SecretBinary") is not None:
        return bytes(secret["SecretBinary"])
    key = secret["SecretString"].encode("utf-8")
    if len(key) < 32:
        raise ValueError("the link signing secret is shorter than 32 bytes")
    return key
