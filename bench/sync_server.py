"""Our model server as it was served before the buffering front: the same app on gunicorn's sync workers.

The slow-client case runs it beside today's server, so the figure shows what the front changed and nothing
else. Only the benchmark uses it.
"""

from __future__ import annotations

import sys

from gunicorn.app.wsgiapp import WSGIApplication
from mlmodel import contract, serve

ASGI_ONLY = ("--asgi-loop", "--asgi-lifespan")


def sync_argv(port: int, workers: int, timeout: int, host: str) -> list[str]:
    argv = serve.gunicorn_argv(port, workers, timeout, host)
    out: list[str] = []
    flags = iter(argv[:-1])
    for flag in flags:
        if flag in ASGI_ONLY:
            next(flags)
        elif flag == "--worker-class":
            out += [flag, "sync"]
            next(flags)
        else:
            out.append(flag)
    return [*out, "mlmodel.serve:create_app()"]


def main() -> int:
    sys.argv = sync_argv(
        contract.server_port(), contract.server_workers(), contract.server_timeout(), contract.bind_host()
    )
    WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]", prog="gunicorn").run()
    return contract.EXIT_UNEXPECTED  # not reached


if __name__ == "__main__":
    sys.exit(main())
