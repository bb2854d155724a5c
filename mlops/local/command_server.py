"""A warm interpreter that the workflow's ``mlops`` commands fork from, as the container's programs fork from
mlops.local.warm: importing boto3 and the CLI costs a new Python about 0.4 s of CPU, three times per release.

``python -m mlops.local.command_server SOCKET`` listens on a Unix socket at once, then imports the CLI and
boto3. The ``mlops`` script the local pip stand-in writes (mlops.local.pyshim) connects when
``MLOPS_COMMAND_SERVER`` names the socket and sends its argv, working directory, environment and its
stdin/stdout/stderr; the server forks a child that takes all of them, runs the console script's function
and exits with its code, which the script exits with. Each command is still its own process with its own
environment, files and exit code; only the imports are shared. Without the variable, or when the server does
not answer, the script runs the command in a new interpreter instead.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import socket
import struct
import sys
import traceback

HEADER = struct.Struct("!I")
PRELOAD = ("boto3", "botocore.session", "mlops.cli", "mlops.aws_cli", "mlops.release", "mlops.github_output")

CLIENT = """#!{python} -S
# {name}: the console script of {target}, written by the rehearsal's pip stand-in (mlops.local.pyshim).
# It runs in the warm interpreter the rehearsal started (mlops.local.command_server) when there is one.
import json, os, socket, struct, sys
path = os.environ.get("MLOPS_COMMAND_SERVER")
if path:
    try:
        server = socket.socket(socket.AF_UNIX)
        server.connect(path)
        body = json.dumps({{"target": "{target}", "argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ)}})
        socket.send_fds(server, [struct.pack("!I", len(body.encode()))], [0, 1, 2])
        server.sendall(body.encode())
        answer = server.recv(16)
    except OSError:
        answer = b""
    if answer:
        sys.exit(int(answer))
module, _, function = "{target}".partition(":")
code = f"import sys; from {{module}} import {{function}}; sys.argv[0] = {{sys.argv[0]!r}}; sys.exit({{function}}())"
os.execv("{python}", ["{python}", "-c", code, *sys.argv[1:]])
"""


def client_script(name: str, target: str, python: str = sys.executable) -> str:
    return CLIENT.format(name=name, target=target, python=python)


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    header, fds, _, _ = socket.recv_fds(connection, HEADER.size, 3)
    (length,) = HEADER.unpack(header)
    body = b""
    while len(body) < length:
        chunk = connection.recv(length - len(body))
        if not chunk:
            raise ConnectionError("the command's script went away")
        body += chunk
    return json.loads(body), fds


def _child(request: dict, fds: list[int]) -> int:
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = request["argv"]
    module, _, function = request["target"].partition(":")
    try:
        getattr(importlib.import_module(module), function)()
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        if isinstance(exit.code, str):
            print(exit.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):
            stream.flush()
    return code


def serve(path: str) -> None:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(8)  # commands that come while the imports run wait in the backlog
    for name in PRELOAD:
        importlib.import_module(name)
    parent = os.getppid()
    listener.settimeout(1.0)
    while os.getppid() == parent:  # the rehearsal went away: so does this
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        with connection:
            connection.settimeout(None)
            try:
                request, fds = _receive(connection)
            except (OSError, ValueError, ConnectionError):
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                os._exit(_child(request, fds))
            for fd in fds:
                os.close(fd)
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            with contextlib.suppress(OSError):
                connection.sendall(str(code if code >= 0 else 128 - code).encode())


if __name__ == "__main__":
    serve(sys.argv[1])
