"""Step outputs for GitHub Actions: ``--github-output`` writes them where ``$GITHUB_OUTPUT`` says, so a
workflow step needs no jq to read a command's JSON."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping

from .release import ReleaseError


def write_github_output(values: Mapping[str, object]) -> None:
    """Appends ``name=value`` lines (``name<<DELIMITER`` blocks for values with line breaks)."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        raise ReleaseError("--github-output: GITHUB_OUTPUT is not set (it is, in a GitHub Actions step)")
    lines = []
    for name, value in values.items():
        text = "true" if value is True else "false" if value is False else "" if value is None else str(value)
        if "\n" in text:
            delimiter = f"ghadelimiter_{secrets.token_hex(8)}"
            lines += [f"{name}<<{delimiter}", text, delimiter]
        else:
            lines.append(f"{name}={text}")
    with open(path, "a", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
