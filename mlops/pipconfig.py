"""pip's effective settings, and the same settings spelled for uv and for an image build.

uv reads neither pip's configuration files nor the ``PIP_*`` variables, so on a machine whose packages come
through pip settings (a company mirror, a re-signing proxy's CA) uv would go to PyPI directly and fail.
scripts/lib.sh runs this file with a new venv's Python before the project is installed: standard library only.
    python mlops/pipconfig.py uv-env      prints `export UV_...=...` lines for the shell to evaluate
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping

# `pip config list` names a setting by its section: an install-only value overrides a global one, and a
# PIP_* variable (shown as ":env:") overrides both, as pip itself applies them.
_PRECEDENCE = ("global", "install", ":env:")


def read_pip_config(python: str = sys.executable) -> str:
    done = subprocess.run(
        [python, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    )
    return done.stdout


def effective_settings(config_list: str) -> dict[str, str]:
    """{setting: value} from `pip config list` output (which includes the PIP_* variables)."""
    ranked: dict[str, tuple[int, str]] = {}
    for line in config_list.splitlines():
        key, sep, value = line.partition("=")
        section, _, name = key.rpartition(".")
        if not sep or section not in _PRECEDENCE:
            continue
        rank = _PRECEDENCE.index(section)
        if rank >= ranked.get(name, (-1, ""))[0]:
            ranked[name] = (rank, value.strip().strip("'\""))
    return {name: value for name, (_, value) in ranked.items()}


def uv_environment(settings: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The UV_* (and TLS/proxy) variables that make uv use the package sources pip is configured with.
    A variable the caller already set wins: it is uv's own configuration."""
    values = {name: settings[name].split() for name in settings}
    translated: dict[str, str] = {}
    if values.get("index-url"):
        translated["UV_DEFAULT_INDEX"] = values["index-url"][0]
    if values.get("extra-index-url"):
        translated["UV_INDEX"] = " ".join(values["extra-index-url"])
        # pip picks the best version across all its indexes; uv's default stops at the first index that
        # has the package, which fails when a local mirror holds older releases than the pins ask for.
        translated["UV_INDEX_STRATEGY"] = "unsafe-best-match"
    if values.get("find-links"):
        translated["UV_FIND_LINKS"] = ",".join(values["find-links"])
    if values.get("trusted-host"):
        translated["UV_INSECURE_HOST"] = " ".join(values["trusted-host"])
    if values.get("constraint"):
        translated["UV_CONSTRAINT"] = " ".join(values["constraint"])
    if _true(settings.get("no-index")):
        translated["UV_NO_INDEX"] = "1"
    if settings.get("timeout") or settings.get("default-timeout"):
        translated["UV_HTTP_TIMEOUT"] = settings.get("timeout") or settings["default-timeout"]
    if settings.get("cert"):
        translated["SSL_CERT_FILE"] = settings["cert"]
    if settings.get("proxy"):
        translated["HTTPS_PROXY"] = translated["HTTP_PROXY"] = settings["proxy"]
    return {name: value for name, value in translated.items() if not environ.get(name)}


def _true(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "on")


def main(argv: list[str]) -> int:
    if argv != ["uv-env"]:
        print(__doc__, file=sys.stderr)
        return 2
    for name, value in uv_environment(effective_settings(read_pip_config()), os.environ).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
