"""A closed-loop HTTP load generator for a server on 127.0.0.1: `clients` connections, each sending its next
request as soon as the previous answer is complete, until `max_requests` are sent or `max_seconds` pass.

One thread and non-blocking sockets, so the generator costs little CPU next to the server and no GIL queue
inflates the latencies it records. Connections are kept alive when the server allows it; gunicorn's sync
workers close each one, and then a request's latency includes its connect, as a real client's would.
"""

from __future__ import annotations

import selectors
import socket
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"


@dataclass
class LoadResult:
    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, one per successful request
    errors: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile_ms(self, percent: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered)) - 1))
        return ordered[rank] * 1000


class _Connection:
    __slots__ = ("buffer", "connecting", "header_end", "keep_alive", "length", "sock", "started", "status")

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.connecting = False
        self.reset()

    def reset(self) -> None:
        self.buffer = b""
        self.header_end = -1
        self.length = -1
        self.status = 0
        self.keep_alive = True
        self.started = 0.0

    def parse_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        self.header_end = end + 4
        lines = self.buffer[:end].split(b"\r\n")
        self.status = int(lines[0].split(b" ", 2)[1])
        self.length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                self.length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                self.keep_alive = False
        return True

    @property
    def complete(self) -> bool:
        return self.header_end >= 0 and len(self.buffer) >= self.header_end + self.length


def request_bytes(
    port: int, body: bytes, path: str = "/invocations", content_type: str = "text/csv"
) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Accept: text/csv\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def run_load(
    port: int,
    body: bytes,
    clients: int,
    max_requests: int,
    max_seconds: float,
    expect: bytes | None = None,
    grace: float = 5.0,
    request: bytes | None = None,
) -> LoadResult:
    """Sends up to `max_requests` POST /invocations with `clients` in flight; stops early at `max_seconds`.

    A response counts as an error when it is not 200 or (with `expect`) its body is not `expect`; so does a
    request still unanswered `grace` seconds after `max_seconds`. `request` replaces the whole request
    (then `body` is unused). Connections are made without blocking: a server whose listen queue overflows
    delays only the clients it drops.
    """
    request = request or request_bytes(port, body)
    selector = selectors.DefaultSelector()
    connections = [_Connection() for _ in range(clients)]
    result = LoadResult(clients=clients, seconds=0.0)
    sent = 0
    start = time.perf_counter()
    deadline = start + max_seconds
    in_flight = 0

    def send(conn: _Connection) -> None:
        nonlocal sent, in_flight
        sent += 1
        in_flight += 1
        conn.reset()
        conn.started = time.perf_counter()
        if conn.sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            sock.connect_ex((HOST, port))
            conn.sock, conn.connecting = sock, True
            selector.register(sock, selectors.EVENT_WRITE, conn)  # writable once connected
            return
        conn.sock.send(request)  # a few hundred bytes: fits the empty send buffer whole

    def drop(conn: _Connection) -> None:
        if conn.sock is not None:
            selector.unregister(conn.sock)
            conn.sock.close()
            conn.sock = None

    for conn in connections:
        if sent < max_requests:
            send(conn)
    while in_flight:
        now = time.perf_counter()
        for key, _ in selector.select(timeout=max(0.0, deadline - now) + grace):
            conn = key.data
            if conn.connecting:
                conn.connecting = False
                if conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    selector.modify(conn.sock, selectors.EVENT_READ, conn)
                    conn.sock.send(request)
                    continue
                data = b""  # refused: counts as a request that got no answer
            else:
                try:
                    data = conn.sock.recv(65536)
                except OSError:
                    data = b""
            if data:
                conn.buffer += data
                if conn.header_end < 0 and not conn.parse_head():
                    continue
                if not conn.complete:
                    continue
                finished = time.perf_counter()
                payload = conn.buffer[conn.header_end : conn.header_end + conn.length]
                if conn.status == 200 and (expect is None or payload == expect):
                    result.latencies.append(finished - conn.started)
                else:
                    result.errors += 1
                if not conn.keep_alive:
                    drop(conn)
            else:  # closed before a complete answer
                result.errors += 1
                drop(conn)
            in_flight -= 1
            if sent < max_requests and time.perf_counter() < deadline:
                send(conn)
        if time.perf_counter() > deadline + grace:
            result.errors += in_flight  # answers that never came
            break
    result.seconds = time.perf_counter() - start
    for conn in connections:
        drop(conn)
    selector.close()
    return result
