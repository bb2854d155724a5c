"""A warm interpreter that the container's programs fork from, instead of starting a new Python each time.

``train`` and ``serve`` import scikit-learn, numpy, Flask and gunicorn: seconds on a small machine, every time.
``python -m mlops.local.warm`` imports them once; the runtime asks it (one JSON line on its stdin) to fork a
child that runs a program as ``exec`` would, with the given environment and log. It answers each request with
the child's pid, and reports every child's exit code as the child ends, so a caller can wait for and signal
the child as it would a ``Popen``. When the caller goes away (stdin closes) it stops the children still running.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import runpy
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

WARM_MODULES = ("mlmodel.train", "mlmodel.serve", "gunicorn.app.wsgiapp", "gunicorn.workers.sync")


class ForkedProgram:
    """A child of the warm interpreter, with the part of ``Popen``'s interface the runners use."""

    def __init__(self, pid: int, name: str) -> None:
        self.pid, self.name = pid, name
        self.returncode: int | None = None
        self._ended = threading.Event()

    def _exited(self, code: int) -> None:
        self.returncode = code
        self._ended.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(self.name, timeout or 0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class WarmInterpreter:
    """The caller's side: starts ``python -m mlops.local.warm`` once and forks programs from it."""

    LOST = 255  # the exit code reported for children whose warm interpreter died before them

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._started: queue.Queue[ForkedProgram | None] = queue.Queue()
        self._running: dict[int, ForkedProgram] = {}

    def start(self) -> None:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", __name__],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
                threading.Thread(
                    target=self._read_replies, args=(self._process.stdout,), name="warm", daemon=True
                ).start()

    def fork(
        self, program: Path, env: dict[str, str], log_path: Path, new_session: bool
    ) -> ForkedProgram | None:
        """The running child, or None if the warm interpreter is gone (the caller then starts the program)."""
        self.start()
        request = {"program": str(program), "env": env, "log": str(log_path), "new_session": new_session}
        with self._lock:
            try:
                self._process.stdin.write(json.dumps(request).encode() + b"\n")
                self._process.stdin.flush()
            except OSError:
                return None
            try:
                return self._started.get(timeout=30)
            except queue.Empty:
                return None

    def _read_replies(self, replies) -> None:
        for line in replies:
            reply = json.loads(line)
            if "pid" in reply:
                child = ForkedProgram(reply["pid"], reply["name"])
                self._running[child.pid] = child
                self._started.put(child)
            elif child := self._running.pop(reply["exited"], None):
                child._exited(reply["code"])
        for child in self._running.values():
            child._exited(self.LOST)
        self._running.clear()
        self._started.put(None)


# -- the warm interpreter itself ---------------------------------------------------------------------------


def _run_in_child(request: dict) -> int:
    """What ``exec program`` would do, in the forked child; returns the exit code."""
    try:
        if request["new_session"]:
            os.setsid()
        os.environ.clear()
        os.environ.update(request["env"])
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        sys.argv = [request["program"]]
        runpy.run_path(request["program"], run_name="__main__")
        return 0
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        return 2
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


class _Server:
    """The warm interpreter's loop: fork on each request line, report each child's end."""

    def __init__(self) -> None:
        self.requests, self.replies = sys.stdin.buffer.raw, sys.stdout.buffer
        self.wake_r, self.wake_w = os.pipe()  # SIGCHLD wakes the loop through this pipe
        os.set_blocking(self.wake_w, False)
        self.children: set[int] = set()

    def run(self) -> None:
        for module in WARM_MODULES:
            __import__(module)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C is the caller's to handle
        for number in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, _exit_on_signal)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        try:
            self._loop()
        finally:  # the caller is gone, or this interpreter is stopped: so are the programs it started
            self._stop_children()

    def _stop_children(self, grace_seconds: float = 5.0) -> None:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while self.children and time.monotonic() < deadline:
            self._reap(report=False)
            time.sleep(0.02)
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)  # reaped here: this machine's init may never reap orphans

    def _loop(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.requests, selectors.EVENT_READ)
        selector.register(self.wake_r, selectors.EVENT_READ)
        pending = b""
        while True:
            for key, _ in selector.select():
                if key.fileobj == self.wake_r:
                    os.read(self.wake_r, 4096)
                    self._reap()
                    continue
                chunk = os.read(self.requests.fileno(), 65536)
                if not chunk:
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    self._fork(json.loads(line), selector)

    def _fork(self, request: dict, selector: selectors.BaseSelector) -> None:
        pid = os.fork()
        if pid == 0:
            selector.close()
            signal.set_wakeup_fd(-1)
            for number in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(number, signal.SIG_DFL)
            os.close(self.wake_r)
            os.close(self.wake_w)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os._exit(_run_in_child(request))
        self.children.add(pid)
        self._reply({"pid": pid, "name": Path(request["program"]).name})

    def _reap(self, report: bool = True) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            if report:
                self._reply({"exited": pid, "code": os.waitstatus_to_exitcode(status)})

    def _reply(self, message: dict) -> None:
        self.replies.write(json.dumps(message).encode() + b"\n")
        self.replies.flush()


def _exit_on_signal(number: int, _frame) -> None:
    raise SystemExit(128 + number)


if __name__ == "__main__":
    _Server().run()
