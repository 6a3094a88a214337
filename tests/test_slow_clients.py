"""Slow clients cannot starve the API: hundreds of connections that dribble their headers or
their body a byte at a time leave every normal request answered promptly, and each slow one
is answered ``408`` and closed by the read deadline (``JOBCORE_API_READ_TIMEOUT``)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import ApiProcess

#: Connections of each kind (the issue's attacker: 256 dribbling headers, 256 a body).
SLOW_EACH = 256
#: The read deadline the test's API runs with (the default is 10 s).
READ_TIMEOUT = 3.0


class Dribbler:
    """Holds slow connections open, sending one byte on each every ``pause`` seconds."""

    def __init__(self, port: int, pause: float = 0.5) -> None:
        self.port = port
        self.pause = pause
        self.sockets: list[socket.socket] = []
        self.closed_at: dict[int, float] = {}
        self.answers: dict[int, bytes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.monotonic()

    def open(self, count: int, head: bytes) -> None:
        for _ in range(count):
            conn = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            conn.sendall(head)
            conn.setblocking(False)
            self.sockets.append(conn)

    def start(self) -> Dribbler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.closed_at) < len(self.sockets):
            for index, conn in enumerate(self.sockets):
                if index in self.closed_at:
                    continue
                try:
                    answer = conn.recv(4096)
                except BlockingIOError:
                    answer = None
                except OSError:
                    answer = b""
                if answer is not None:
                    # The server answered, or closed: this connection is done.
                    self.answers[index] = answer
                    self.closed_at[index] = time.monotonic() - self.started
                    continue
                with contextlib.suppress(BlockingIOError, OSError):
                    conn.send(b"x")
            self._stop.wait(self.pause)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for conn in self.sockets:
            conn.close()


@pytest.fixture
def guarded_api(env: dict[str, str], tmp_path: Path) -> Iterator[ApiProcess]:
    api = ApiProcess(dict(env, JOBCORE_API_READ_TIMEOUT=f"{READ_TIMEOUT:g}s"), tmp_path / "api.log")
    api.start()
    try:
        yield api
    finally:
        api.stop()


def test_slow_clients_leave_normal_requests_prompt_and_are_closed_by_the_read_deadline(
    guarded_api: ApiProcess,
) -> None:
    dribbler = Dribbler(guarded_api.port)
    # Headers that never end: one more header byte every half second.
    dribbler.open(SLOW_EACH, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    # A complete head announcing a body that arrives a byte at a time.
    dribbler.open(
        SLOW_EACH,
        b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n",
    )
    dribbler.start()
    try:
        latencies, statuses = [], []
        with requests.Session() as session:
            ends = time.monotonic() + READ_TIMEOUT - 0.5
            while time.monotonic() < ends:
                began = time.perf_counter()
                if len(latencies) % 2:
                    answer = session.get(guarded_api.url + "/healthz", timeout=5)
                else:
                    answer = session.post(
                        guarded_api.url + "/jobs",
                        json={"type": "dummy", "payload": {"echo": "normal"}},
                        timeout=5,
                    )
                latencies.append(time.perf_counter() - began)
                statuses.append(answer.status_code)
        # Every slow connection is answered and closed within the deadline and a margin.
        deadline = time.monotonic() + READ_TIMEOUT + 5
        while len(dribbler.closed_at) < len(dribbler.sockets) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        dribbler.stop()

    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"normal requests: {len(latencies)}, p99 {p99 * 1000:.1f} ms; slow closed:")
    print(f"{len(dribbler.closed_at)} of {len(dribbler.sockets)}")
    assert len(latencies) >= 50
    assert set(statuses) <= {200, 202}, statuses
    assert p99 < 0.1, f"p99 {p99 * 1000:.1f} ms"
    assert len(dribbler.closed_at) == 2 * SLOW_EACH
    closed = sorted(dribbler.closed_at.values())
    # Not before the deadline, and not long after it.
    assert closed[0] >= READ_TIMEOUT - 0.5 and closed[-1] <= READ_TIMEOUT + 3, closed[::64]
    timed_out = [a for a in dribbler.answers.values() if a.startswith(b"HTTP/1.1 408")]
    assert len(timed_out) == 2 * SLOW_EACH, set(a[:40] for a in dribbler.answers.values())


def test_a_head_over_the_limit_is_a_431(http_api: str) -> None:
    answer = requests.get(http_api + "/healthz", headers={"X-Big": "x" * 70_000}, timeout=10)
    assert answer.status_code == 431


def test_a_header_line_that_never_ends_is_a_431(http_api: str) -> None:
    port = int(http_api.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"x" * 70_000)
        assert conn.recv(4096).startswith(b"HTTP/1.1 431")


def test_a_connection_that_sends_nothing_is_closed_at_the_read_deadline(
    guarded_api: ApiProcess,
) -> None:
    with socket.create_connection(("127.0.0.1", guarded_api.port), timeout=READ_TIMEOUT + 5) as c:
        began = time.monotonic()
        answer = c.recv(4096)
        waited = time.monotonic() - began
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert READ_TIMEOUT - 0.5 <= waited <= READ_TIMEOUT + 2
    # The API still answers afterwards.
    assert requests.get(guarded_api.url + "/healthz", timeout=5).status_code == 200
