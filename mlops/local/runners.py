"""Runs the model container's programs: directly as processes (default) or inside the image (Docker or podman)."""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlmodel import contract

from .template import REPO_ROOT
from .warm import ForkedProgram, WarmInterpreter

CONTAINER_BIN = REPO_ROOT / "container" / "bin"
# SageMaker gives a stopped training container 120 s between SIGTERM and SIGKILL; locally nothing needs as long.
STOP_GRACE_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ModelServer:
    """A running ``serve``: the local stand-in for one SageMaker hosting instance."""

    process: subprocess.Popen | ForkedProgram
    port: int
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the model server exited with code {self.process.returncode}: {self.log_tail()}"
                )
            try:
                status, _, _ = self.request("GET", "/ping", timeout=1.0)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the model server did not answer /ping within {timeout:.0f} s: {self.log_tail()}")

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict | None = None,
        timeout: float = 60.0,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def stop(self, timeout: float = 15.0) -> int | None:
        return end_process(self.process, timeout)


def end_process(process: subprocess.Popen | ForkedProgram, grace: float) -> int | None:
    """SIGTERM, then SIGKILL if it still runs `grace` seconds later, as SageMaker stops a container."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):  # never hang a shutdown on one process
                process.wait(grace)
    return process.returncode


_WARM = WarmInterpreter()


class ProcessRunner:
    """Runs ``container/bin/train`` and ``serve`` with this interpreter, as the image would run them."""

    name = "process"
    _warm = False

    def warm_up(self) -> None:
        """From now on ``train`` and ``serve`` fork from a warm interpreter (it loads while the stack starts)."""
        self._warm = True
        _WARM.start()

    def _forks(self, program: str, argv: list[str], environ: dict | None) -> bool:
        return self._warm and environ is not None and argv == ProcessRunner._command(self, program)

    def _command(self, program: str) -> list[str]:
        return [sys.executable, str(CONTAINER_BIN / program)]

    def _env(self, base: Path, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(extra)
        env[contract.BASE_DIR_ENV] = str(base)
        # On this machine, not SageMaker's network: only this machine may reach the model server.
        env.setdefault(contract.BIND_HOST_ENV, "127.0.0.1")
        return env

    def _argv(
        self, image: str, base: Path, program: str, env: dict[str, str]
    ) -> tuple[list[str], dict | None]:
        """The command that runs ``program`` and the environment it runs in."""
        return self._command(program), self._env(base, env)

    def train(
        self,
        image: str,
        base: Path,
        log_path: Path,
        env: dict[str, str] | None = None,
        max_runtime: float | None = None,
        stop: threading.Event | None = None,
        interrupt: Callable[[], bool] | None = None,
    ) -> int | None:
        """train's exit code, or None if it was stopped: past `max_runtime` seconds, when `stop` is set, or
        when `interrupt()` (asked while it runs, e.g. to sync its checkpoints) says so."""
        argv, environ = self._argv(image, base, "train", env or {})
        process = self._start("train", argv, environ, log_path, new_session=False)
        deadline = math.inf if max_runtime is None else time.monotonic() + max_runtime
        while True:
            try:
                return process.wait(0.05 if interrupt else 0.2)
            except subprocess.TimeoutExpired:
                if (
                    time.monotonic() >= deadline
                    or (stop is not None and stop.is_set())
                    or (interrupt is not None and interrupt())
                ):
                    end_process(process, STOP_GRACE_SECONDS)
                    return None

    def serve(self, image: str, base: Path, log_path: Path, env: dict[str, str] | None = None) -> ModelServer:
        read_only_tree(contract.Paths(base).model_dir)  # as SageMaker mounts it: the server may only read it
        port = free_port()
        argv, environ = self._argv(image, base, "serve", {contract.PORT_ENV: str(port), **(env or {})})
        process = self._start("serve", argv, environ, log_path, new_session=True)
        return ModelServer(process=process, port=port, log_path=log_path)

    def _start(
        self, program: str, argv: list[str], environ: dict | None, log_path: Path, new_session: bool
    ) -> subprocess.Popen | ForkedProgram:
        """`program` forked from the warm interpreter when it can be, else a new process; output to `log_path`."""
        if self._forks(program, argv, environ):
            child = _WARM.fork(Path(argv[-1]), environ, log_path, new_session=new_session)
            if child is not None:
                return child
        with log_path.open("ab") as log:
            return subprocess.Popen(
                argv, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=new_session
            )


def read_only_tree(folder: Path) -> None:
    """Takes the write bits off a folder's files and folders (a program running as root is not held by them,
    as root in a container is not held by a read-only mount's modes either: the image runner mounts it :ro)."""
    if not folder.is_dir():
        return
    for path in [*folder.rglob("*"), folder]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~0o222)


def remove_tree(folder: Path) -> None:
    """shutil.rmtree that also removes what read_only_tree protected."""

    def writable_then_again(function, path, _):
        Path(path).parent.chmod(0o755)
        if Path(path).is_dir() and not Path(path).is_symlink():
            Path(path).chmod(0o755)
        function(path)

    shutil.rmtree(folder, onerror=writable_then_again)


class ImageRunner(ProcessRunner):
    """Runs the programs inside the model image, as SageMaker does (``docker run IMAGE train|serve``)."""

    name = "image"

    def __init__(self, image_for_uri):
        self.image_for_uri = image_for_uri

    def warm_up(self) -> None:
        """Nothing to warm: the programs run inside the image."""

    def _argv(
        self, image: str, base: Path, program: str, env: dict[str, str]
    ) -> tuple[list[str], dict | None]:
        from . import images

        mounts = {str(base): contract.DEFAULT_BASE_DIR}
        if program == "serve":  # as on SageMaker, the server may read the model but not change it
            model_dir = contract.Paths(base).model_dir
            mounts[str(model_dir)] = f"{contract.Paths(Path(contract.DEFAULT_BASE_DIR)).model_dir}:ro"
        # Host networking: the image's 0.0.0.0 (SageMaker's contract) would be every interface of this machine.
        env = {contract.BIND_HOST_ENV: "127.0.0.1", **env}
        # Variables go into the container with --env; the engine itself runs in this process's environment.
        return images.run_args(self.image_for_uri(image), program, mounts=mounts, env=env), None


RUNNERS = ("process", "image")


def runner_named(name: str, commit: str = "", out=None) -> ProcessRunner:
    """The runner for ``--runner``; ``image`` first builds the model image from container/ (cached)."""
    if name == "process":
        return ProcessRunner()
    if name == "image":
        from . import images

        def log(line: str) -> None:
            if out is not None:
                out.write(f"  image: {line}\n")
                out.flush()

        log(f"engine: {images.engine().describe()}")
        tag = f"{images.MODEL_IMAGE}:{commit[:12] or 'local'}"
        images.build_image(tag, context=REPO_ROOT / "container", log=log)
        return ImageRunner(lambda image_uri: tag)  # the commit-tagged ECR image is this local build
    raise ValueError(f"runner must be one of {', '.join(RUNNERS)}, got {name!r}")
