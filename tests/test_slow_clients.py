"""Slow clients cannot starve the API: hundreds of connections that dribble their headers or
their body a byte at a time leave every normal request answered promptly, and each slow one
is answered ``408`` and closed by the read deadline (``JOBCORE_API_READ_TIMEOUT``)."""

from __future__ import annotations

import contextlib
import json
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
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        # In separate reads: the read a head begins in is not counted (it may also hold the
        # requests before it), so a head is refused within one read of the limit.
        for _ in range(4):
            time.sleep(0.2)
            conn.sendall(b"x" * 30_000)
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


def _raw(port: int, data: bytes, *, read: bool = True, timeout: float = 10) -> bytes:
    """Send ``data`` on a new connection; what the server answered until it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(data)
        if not read:
            return b""
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def _jobs_echoing(url: str, marker: str) -> list[str]:
    items = requests.get(url + "/jobs?type=dummy&limit=500", timeout=10).json()["items"]
    return [i["jobId"] for i in items if i["payload"].get("echo") == marker]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_cut_short_by_a_disconnect_creates_no_job(http_api: str, framing: str) -> None:
    port = int(http_api.rsplit(":", 1)[1])
    marker = f"cut-{framing}"
    body = b'{"type": "dummy", "payload": {"echo": "' + marker.encode() + b'"}}'
    head = b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if framing == "content-length":
        # The whole JSON object arrives, but not the 100 bytes announced.
        request = head + b"Content-Length: 100\r\n\r\n" + body
    else:
        # Every chunk but the last (the zero-length one that ends the body).
        request = head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(body) + body + b"\r\n"
    _raw(port, request, read=False)
    time.sleep(0.5)
    assert _jobs_echoing(http_api, marker) == []


def test_bytes_between_requests_do_not_hold_a_connection_past_the_deadline(
    guarded_api: ApiProcess,
) -> None:
    with socket.create_connection(("127.0.0.1", guarded_api.port), timeout=READ_TIMEOUT + 5) as c:
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b'{"status":"ok"}'):
            chunk = c.recv(4096)
            assert chunk, first
            first += chunk
        assert first.startswith(b"HTTP/1.1 200")
        began = time.monotonic()
        c.sendall(b"\r\n")  # not a request: uvicorn alone would wait for one forever
        answer = c.recv(4096)
        waited = time.monotonic() - began
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer
    assert waited <= READ_TIMEOUT + 2


def test_a_client_that_stops_reading_is_dropped_at_the_deadline(guarded_api: ApiProcess) -> None:
    conn = socket.create_connection(("127.0.0.1", guarded_api.port), timeout=5)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    dropped = False
    try:
        # Far more answers asked for than the socket buffers hold, none read: the server's
        # writes back up, and after the deadline it resets the connection.
        conn.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)
        time.sleep(READ_TIMEOUT + 1)
        ends = time.monotonic() + 5
        while time.monotonic() < ends and not dropped:
            try:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            except (ConnectionResetError, BrokenPipeError):
                dropped = True
            time.sleep(0.2)
    finally:
        conn.close()
    assert dropped, "the server kept a client that stopped reading"
    assert requests.get(guarded_api.url + "/healthz", timeout=5).status_code == 200


def test_only_http_1_is_served_and_a_compressed_body_is_a_415(http_api: str) -> None:
    port = int(http_api.rsplit(":", 1)[1])
    answer = _raw(port, b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 505"), answer
    gzipped = requests.post(
        http_api + "/jobs",
        data=b"\x1f\x8b\x08\x00",
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        timeout=10,
    )
    assert gzipped.status_code == 415
    assert "uncompressed" in gzipped.json()["detail"]


def test_pipelined_requests_are_each_answered(http_api: str) -> None:
    port = int(http_api.rsplit(":", 1)[1])
    count = 4000
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * count)
        received = b""
        while received.count(b"HTTP/1.1 200") < count:
            chunk = conn.recv(1 << 20)
            assert chunk, received[-300:]
            received += chunk
    assert b"HTTP/1.1 431" not in received


def test_the_servers_own_lines_are_json_too(guarded_api: ApiProcess) -> None:
    answer = _raw(guarded_api.port, b"FOO /jobs HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    time.sleep(0.3)
    lines = [line for line in guarded_api.log().splitlines() if line.strip()]
    assert any("Invalid HTTP request" in line for line in lines), lines[-5:]
    for line in lines:
        assert isinstance(json.loads(line), dict), line


def test_expect_100_continue_is_answered_before_the_body_is_sent(http_api: str) -> None:
    port = int(http_api.rsplit(":", 1)[1])
    body = b'{"type": "dummy", "payload": {"echo": "after-100"}}'
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        assert conn.recv(4096).startswith(b"HTTP/1.1 100")
        conn.sendall(body)
        answer = b""
        while b"accepted" not in answer:
            chunk = conn.recv(4096)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 202"), answer


def test_requests_are_not_logged_one_by_one(guarded_api: ApiProcess) -> None:
    """The metrics count and time requests: an access line each would be noise (and cost)."""
    for _ in range(5):
        assert _raw(
            guarded_api.port,
            b"GET /healthz?probe=access HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
    time.sleep(0.3)
    assert "probe=access" not in guarded_api.log()


@pytest.mark.parametrize("expect", [False, True], ids=["plain", "expect 100-continue"])
def test_a_declared_body_over_the_limit_is_refused_at_once_and_its_connection_closed(
    http_api: str, expect: bool
) -> None:
    port = int(http_api.rsplit(":", 1)[1])
    head = (
        b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2000000\r\n" + (b"Expect: 100-continue\r\n" if expect else b"") + b"\r\n"
    )
    started = time.monotonic()
    answer = _raw(port, head, timeout=5)  # read until the server closes the connection
    assert time.monotonic() - started < 2, "refused before any body byte, not at a deadline"
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    answer_head, _, body = answer.partition(b"\r\n\r\n")
    assert b"connection: close" in answer_head.lower()
    assert b"application/problem+json" in answer_head
    assert json.loads(body)["detail"] == "the body is 2000000 bytes; the limit is 1048576"


def test_a_chunked_body_over_the_limit_closes_its_connection(http_api: str) -> None:
    """The rest of a refused body must not be read as the next request."""
    port = int(http_api.rsplit(":", 1)[1])
    chunk = b"x" * (1024 * 1024 + 10)
    request = (
        b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        + f"{len(chunk):x}\r\n".encode()
        + chunk
        + b"\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    answer = _raw(port, request, timeout=15)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"connection: close" in answer.partition(b"\r\n\r\n")[0].lower()
    assert answer.count(b"HTTP/1.1 ") == 1, "the connection closed after the refusal"


def _problem_of(answer: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = dict(line.lower().split(b": ", 1) for line in lines[1:])
    assert headers[b"content-type"] == b"application/problem+json", answer
    assert headers[b"connection"] == b"close", answer
    assert int(headers[b"content-length"]) == len(body), answer
    return int(lines[0].split()[1]), json.loads(body)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"FOO BAR\r\n\r\n", 400),
        (b"get /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400),
        (b"GET /jobs/a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (
            b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n", 505),
        (b"GET /healthz HTTP/3.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (
            b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Transfer-Encoding: gzip, chunked\r\n\r\n10\r\n{"type":"dummy"}\r\n0\r\n\r\n',
            501,
        ),
    ],
)
def test_what_the_http_layer_refuses_is_a_problem_saying_what_to_send(
    http_api: str, request_bytes: bytes, status: int
) -> None:
    port = int(http_api.rsplit(":", 1)[1])
    answered, problem = _problem_of(_raw(port, request_bytes))
    assert answered == status == problem["status"]
    assert problem["title"] and len(str(problem["detail"])) > 20


def test_a_body_in_a_transfer_coding_besides_chunked_creates_no_job(http_api: str) -> None:
    port = int(http_api.rsplit(":", 1)[1])
    body = json.dumps({"type": "dummy", "payload": {"echo": "gzip-chunked"}}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    answer = _raw(
        port,
        b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked,
    )
    assert answer.startswith(b"HTTP/1.1 501"), answer
    assert _jobs_echoing(http_api, "gzip-chunked") == []


def test_past_the_connection_limit_a_request_gets_a_503_with_retry_after(
    env: dict[str, str], tmp_path: Path
) -> None:
    api = ApiProcess(dict(env, JOBCORE_API_MAX_CONNECTIONS="4"), tmp_path / "api.log", workers=1)
    api.start()
    held = []
    try:
        for _ in range(3):
            held.append(socket.create_connection(("127.0.0.1", api.port), timeout=5))
        time.sleep(0.3)  # each is accepted before the next request
        # The fourth connection is within the limit; a fifth is past it.
        assert (
            _raw(api.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[:12]
            == b"HTTP/1.1 200"
        )
        held.append(socket.create_connection(("127.0.0.1", api.port), timeout=5))
        time.sleep(0.3)
        answered, problem = _problem_of(_raw(api.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        assert answered == 503 == problem["status"]
        head = _raw(api.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").split(b"\r\n\r\n")[0]
        assert b"\r\nretry-after: 1" in head.lower()
        for conn in held:
            conn.close()
        held.clear()
        time.sleep(0.3)
        assert requests.get(api.url + "/healthz", timeout=5).status_code == 200
    finally:
        for conn in held:
            conn.close()
        api.stop()


@pytest.mark.parametrize(
    ("refused", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (b"POST /jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 413),
    ],
)
def test_a_refused_request_is_answered_after_the_requests_before_it(
    http_api: str, refused: bytes, status: int
) -> None:
    """A job created by the first request keeps its 202: the refusal of the one pipelined
    behind it waits its turn, then the connection closes."""
    port = int(http_api.rsplit(":", 1)[1])
    marker = f"pipelined-{status}"
    body = json.dumps({"type": "dummy", "payload": {"echo": marker}}).encode()
    first = (
        b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    answer = _raw(port, first + refused)
    assert answer.startswith(b"HTTP/1.1 202"), answer[:300]
    answered, problem = _problem_of(answer[answer.index(b"HTTP/1.1 %d" % status) :])
    assert answered == status == problem["status"]
    assert len(_jobs_echoing(http_api, marker)) == 1


def test_requests_pipelined_on_one_connection_are_all_served_at_a_limit_of_one(
    env: dict[str, str], tmp_path: Path
) -> None:
    api = ApiProcess(dict(env, JOBCORE_API_MAX_CONNECTIONS="1"), tmp_path / "api.log", workers=1)
    api.start()
    try:
        time.sleep(0.3)  # the start-up probe's connection is gone
        one = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        answer = _raw(
            api.port, one * 2 + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert answer.count(b"HTTP/1.1 200") == 3, answer
    finally:
        api.stop()
