"""What is being released: the commit and a digest of the container sources."""

from __future__ import annotations

import hashlib
import subprocess

from .local.template import REPO_ROOT


def current_commit() -> str:
    """HEAD of the checkout; outside git, a digest of the container sources stands in for it."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return image_digest_for_tree().split(":", 1)[1][:40]


def image_digest_for_tree() -> str:
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "container").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes())
    return f"sha256:{digest.hexdigest()}"
