"""The two model servers the benchmark compares, started as the local SageMaker starts a model server."""

from __future__ import annotations

import sys
from pathlib import Path

from mlops.local.runners import ModelServer, ProcessRunner

BASELINE_SERVER = Path(__file__).resolve().with_name("baseline_server.py")
SYNC_SERVER = Path(__file__).resolve().with_name("sync_server.py")


class BaselineRunner(ProcessRunner):
    """Runs the baseline predictor in place of ``container/bin/serve`` (same base directory, same model)."""

    name = "baseline"

    def _command(self, program: str) -> list[str]:
        if program != "serve":
            return super()._command(program)
        return [sys.executable, str(BASELINE_SERVER)]


class PreviousRunner(ProcessRunner):
    """Runs our app as it was served before the buffering front: gunicorn's sync workers (`sync_server.py`)."""

    name = "previous"

    def _command(self, program: str) -> list[str]:
        if program != "serve":
            return super()._command(program)
        return [sys.executable, str(SYNC_SERVER)]


RUNNERS: dict[str, ProcessRunner] = {
    "ours": ProcessRunner(),
    "baseline": BaselineRunner(),
    "previous": PreviousRunner(),
}


def start_all(
    base: Path, log_dir: Path, kinds: tuple[str, ...] = ("ours", "baseline")
) -> dict[str, ModelServer]:
    """The servers named by `kinds` on the model under `base`, started side by side; ready when this returns."""
    servers: dict[str, ModelServer] = {}
    try:
        for kind in kinds:
            servers[kind] = RUNNERS[kind].serve("local", base, log_dir / f"serve-{kind}.log")
        for server in servers.values():
            server.wait_ready(timeout=60)
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers
