import os
from pathlib import Path

import pytest

# No test may reach a real AWS account: fake credentials before anything creates a client.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ[_key] = _value
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture
def aws_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def _processes_under(path: Path) -> list[int]:
    """Processes with a file open under `path` (every program the local SageMaker runs logs there)."""
    found = set()
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd).startswith(f"{path}/"):
                found.add(int(fd.parent.parent.name))
        except OSError:
            continue  # gone, or not ours to read
    return sorted(found)


@pytest.fixture
def processes_under():
    return _processes_under
