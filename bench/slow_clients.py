"""Normal clients' latency while slow clients are connected, each sending its body a byte at a time.

A slow client sends its headers at once and then one byte of its body every `interval` seconds; when its
request is answered it connects again and starts over, so `count` of them are always mid-body. Meanwhile
the closed-loop load generator measures ordinary single-row requests. Today's server (the buffering front
on asyncio workers) runs beside our previous serving setup (the same app on sync workers,
`bench/sync_server.py`), taking turns, so what the front changed is the only difference.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from mlops.local.runners import ModelServer

from .data import SAMPLE_LABEL, SAMPLE_ROW
from .loadgen import HOST, request_bytes, run_load
from .serving import summarise

BYTE_INTERVAL_SECONDS = 0.2  # SAMPLE_ROW's 15 bytes take 3 s
NORMAL_CLIENTS = 4
# How long a normal request may stay unanswered after the measurement ends before it counts as unanswered.
GRACE_SECONDS = 10.0


class SlowClients:
    """`count` connections to `port` that always hold a request body half sent (a context manager)."""

    def __init__(self, port: int, count: int, interval: float = BYTE_INTERVAL_SECONDS):
        self.port, self.count, self.interval = port, count, interval
        request = request_bytes(port, SAMPLE_ROW)
        self.head, self.body = request[: -len(SAMPLE_ROW)], SAMPLE_ROW
        self.completed = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def __enter__(self) -> SlowClients:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _open(self) -> list:
        sock = socket.create_connection((HOST, self.port), timeout=10)
        sock.sendall(self.head)
        sock.setblocking(False)
        return [sock, 0]  # the socket and how many body bytes it has sent

    def _run(self) -> None:
        connections = [self._open() for _ in range(self.count)]
        self._ready.set()
        try:
            while not self._stop.wait(self.interval):
                for conn in connections:
                    sock, sent = conn
                    try:
                        if sent < len(self.body):
                            sock.send(self.body[sent : sent + 1])
                            conn[1] = sent + 1
                            continue
                        if sock.recv(65536) == b"":
                            raise ConnectionResetError
                        self.completed += 1  # answered (or refused): start the next slow request
                    except BlockingIOError:
                        continue  # still waiting for the answer
                    except OSError:
                        pass
                    sock.close()
                    conn[:] = self._open()
        finally:
            for sock, _ in connections:
                sock.close()


def measure(
    servers: dict[str, ModelServer],
    *,
    slow_levels: tuple[int, ...],
    seconds: float,
    runs: int,
    log: Callable[[str], None],
) -> dict:
    """Per server and slow-client count: the normal clients' p50/p99 and req/s (min/median over `runs`),
    requests answered and unanswered; the servers take turns."""
    raw: dict[str, dict[int, list]] = {kind: {level: [] for level in slow_levels} for kind in servers}
    for level in slow_levels:
        for _ in range(runs):
            for kind, server in servers.items():
                with SlowClients(server.port, level) as slow:
                    time.sleep(0.5)  # the slow clients are mid-body before the measurement starts
                    result = run_load(
                        server.port,
                        SAMPLE_ROW,
                        NORMAL_CLIENTS,
                        10**7,
                        seconds,
                        expect=SAMPLE_LABEL,
                        grace=GRACE_SECONDS,
                    )
                raw[kind][level].append(result)
                log(
                    f"  slow clients {level:>2}, {kind:8}  {result.requests_per_second:7.0f} req/s  "
                    f"p50 {result.percentile_ms(50):8.2f} ms  p99 {result.percentile_ms(99):8.2f} ms  "
                    f"({result.requests} answered, {result.errors} unanswered or failed; "
                    f"{slow.completed} slow requests completed)"
                )
    return {
        "normal_clients": NORMAL_CLIENTS,
        "slow_body_bytes_per_second": round(1 / BYTE_INTERVAL_SECONDS, 1),
        "slow_body_bytes": len(SAMPLE_ROW),
        "seconds_per_run": seconds,
        **summarise(raw, errors_key="unanswered_or_failed"),
    }
