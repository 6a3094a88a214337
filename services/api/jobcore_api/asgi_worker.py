"""The gunicorn worker that serves the API: uvicorn (uvloop, httptools) running Falcon's ASGI
app, with limits a slow or hostile client cannot get around.

uvicorn itself waits forever for a request that arrives a byte at a time (its keep-alive
timer stops at the first byte) and takes headers of any size. ``ApiHttpProtocol`` adds:

- a read deadline: a request's line, headers and body must all arrive within
  ``JOBCORE_API_READ_TIMEOUT`` of its first byte (or of the connection, for a connection
  that sends nothing), else the connection gets ``408`` and is closed;
- a write deadline: a client that stops reading its answer for as long is dropped;
- a header limit: more than ``MAX_HEAD_BYTES`` before the headers end gets ``431``;
- HTTP/1.0 and 1.1 only (``505`` otherwise: Falcon's ASGI app takes no other version);
- a body in a transfer coding besides ``chunked`` gets ``501`` (the parser would read
  ``gzip, chunked`` as plain chunks);
- every such refusal, and what the parser cannot read (``400``), is problem+json;
- a request whose connection closed before its body arrived whole is marked, so the app
  refuses what it read of it instead of acting on a truncated body.
"""

from __future__ import annotations

import asyncio
import logging
import re
import resource
from typing import Any, ClassVar

import falcon
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker

from jobcore import json_text
from jobcore.settings import Settings
from jobcore_api.problems import RETRY_AFTER_SECONDS, problem
from jobcore_api.request_body import BODY_CUT_SHORT, declared_too_large

#: Most bytes of a request line and headers (gunicorn's own limits come to about 8 KiB
#: per field and 100 fields; this keeps a request's head well within one read buffer).
MAX_HEAD_BYTES = 64 * 1024


def _refusal(status: str, title: str, detail: str, *, retry_after: bool = False) -> bytes:
    """An answer the protocol gives on its own, before the app sees the request: problem+json
    as the app's, and the connection closed (what is left of the request is not read)."""
    body = json_text.answer(problem(status, title, detail).to_problem())
    retry = b"retry-after: %d\r\n" % RETRY_AFTER_SECONDS if retry_after else b""
    return (
        b"HTTP/1.1 " + status.encode("ascii") + b"\r\ncontent-type: application/problem+json\r\n"
        b"content-length: "
        + str(len(body)).encode("ascii")
        + b"\r\n"
        + retry
        + b"connection: close\r\n\r\n"
        + body
    )


_TIMED_OUT = _refusal(
    falcon.HTTP_408,
    "Request timeout",
    "the request did not arrive in time; send it whole and promptly",
)
_VERSION_NOT_SUPPORTED = _refusal(
    falcon.HTTP_505, "HTTP version not supported", "send the request as HTTP/1.1 (or HTTP/1.0)"
)
_HEAD_TOO_LARGE = _refusal(
    falcon.HTTP_431,
    "Request header fields too large",
    f"the request line and headers exceed {MAX_HEAD_BYTES} bytes",
)
_MALFORMED = _refusal(
    falcon.HTTP_400,
    "Malformed HTTP request",
    "the request is not HTTP/1.1: send a request line (an upper-case method, a path, "
    "HTTP/1.1), then one 'Name: value' header per line, each line ending in CRLF, then an "
    "empty line; and one Content-Length or Transfer-Encoding: chunked for a body, not both",
)
_TRANSFER_CODING = _refusal(
    falcon.HTTP_501,
    "Unsupported transfer coding",
    "send the body as it is (with a Content-Length) or chunked (Transfer-Encoding: chunked); "
    "no other transfer coding is read",
)


def _body_too_large(length: int, limit: int) -> bytes:
    """The app's ``413`` for a declared ``Content-Length`` over the limit."""
    return _refusal(falcon.HTTP_413, "Body too large", declared_too_large(length, limit))


#: ``503`` past ``JOBCORE_API_MAX_CONNECTIONS`` (uvicorn's own is plain text, without
#: ``Retry-After``).
_OVER_CAPACITY = _refusal(
    falcon.HTTP_503,
    "Too many connections",
    "this API process holds as many connections (or requests) as it takes; retry in a "
    "moment, over a kept-alive connection rather than a new one each time",
    retry_after=True,
)
#: The HTTP version of a request line, wherever one begins in a read.
_VERSION_IN_LINE = re.compile(rb"(?:^|\n)[!-~]+ [!-~]+ HTTP/(\d+\.\d+)\r?\n")


class _OneWriteAnswer:
    """A request's transport that sends its answer's head together with the first write of
    its body: uvicorn writes them in two calls, a second system call per request. Anything
    written before the answer starts (``100 Continue``) goes out at once."""

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None
        self._body_started = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._body_started = True
            self._transport.write(head + bytes(data))
        elif (
            self._cycle.response_started
            and not self._body_started
            # uvicorn writes no body for HEAD: its head goes out alone.
            and self._cycle.scope["method"] != "HEAD"
        ):
            self._head = bytes(data)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Send a held head (the connection is closing)."""
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class ApiHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a read deadline per request, a write deadline for a
    client that stops reading, a header limit, HTTP/1.x only, and a mark on a request whose
    body never arrived whole (``BODY_CUT_SHORT``)."""

    #: Seconds a request has to arrive whole (set per server by ``protocol_for``).
    read_timeout: ClassVar[float] = 10.0
    #: Largest body a request may declare (``JOBCORE_MAX_BODY_BYTES``, by ``protocol_for``).
    max_body_bytes: ClassVar[int] = 1024 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: ``JOBCORE_API_MAX_CONNECTIONS``, tested here (``_over_capacity``) in place of
        #: uvicorn's own test, which it would otherwise also make.
        self._connection_limit: int | None = self.limit_concurrency
        self.limit_concurrency = None
        self._deadline: asyncio.TimerHandle | None = None
        self._write_deadline: asyncio.TimerHandle | None = None
        #: Bytes read while the head was incomplete, and the head's parsed size.
        self._raw_head = 0
        self._head_bytes = 0
        self._reading_head = True
        self._in_message = False
        self._began_in_this_read = False
        self._refused = False
        #: What the last read held (to tell a request line's HTTP version on a parse error).
        self._last_read = b""
        #: A refusal to send once the answers before it are written.
        self._answer_last: bytes | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._write_deadline is not None:
            self._write_deadline.cancel()
        cycle = self.cycle
        if cycle is not None and cycle.more_body:
            # Before uvicorn tells the app of the disconnect: what it read is not the body.
            cycle.scope[BODY_CUT_SHORT] = True  # type: ignore[literal-required]
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._deadline is None and not self._in_message and self._idle():
            # Bytes between requests (blank lines, a request's first bytes): what follows has
            # until the deadline to arrive, whatever uvicorn's keep-alive timer did.
            self._arm()
        self._began_in_this_read = False
        self._last_read = data
        super().data_received(data)
        # A head still unfinished after this read: all of it so far is head (the parser
        # names no header until its line ends, so a never-ending line is caught here). A
        # read that began the head also held the requests before it: not counted.
        if self._reading_head and self._in_message and not self._refused:
            self._raw_head = 0 if self._began_in_this_read else self._raw_head + len(data)
            if self._raw_head > MAX_HEAD_BYTES:
                self._refuse(_HEAD_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._raw_head = self._head_bytes = 0
        self._reading_head = self._in_message = self._began_in_this_read = True
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        declared, transfer_coded = self._framing()
        # Refused before the app sees it; the rest of what was read is dropped.
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(_HEAD_TOO_LARGE)
        elif self.parser.get_http_version() not in ("1.0", "1.1"):
            self._refuse(_VERSION_NOT_SUPPORTED)
        elif transfer_coded:
            self._refuse(_TRANSFER_CODING)
        elif self._over_capacity():
            self.logger.warning("Exceeded concurrency limit.")
            self._refuse(_OVER_CAPACITY)
        elif declared > self.max_body_bytes:
            # Before the app would ask for the body (and a ``100 Continue`` invite it).
            self._refuse(_body_too_large(declared, self.max_body_bytes))
        else:
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not None:
                cycle.transport = _OneWriteAnswer(self.transport, cycle)  # type: ignore[assignment]

    def _framing(self) -> tuple[int, bool]:
        """The declared ``Content-Length`` (0 without one), and whether the body is sent in a
        transfer coding besides chunked (``gzip, chunked``), which the parser would not undo:
        read as it is, it would not be the body meant. One pass over the headers."""
        declared, transfer_coded = 0, False
        for name, value in self.headers:
            if name == b"content-length" and value.isdigit():
                declared = int(value)
            elif name == b"transfer-encoding" and value.strip().lower() != b"chunked":
                transfer_coded = True
        return declared, transfer_coded

    def _over_capacity(self) -> bool:
        """More connections than the limit (this one counted), or as many requests in
        flight: uvicorn's own test, off by one, would serve one connection fewer. A request
        pipelined behind one of its connection's is not tested: it waits its turn, adding
        nothing in flight."""
        limit = self._connection_limit
        if limit is None or not self._idle():
            return False
        return len(self.connections) > limit or len(self.tasks) >= limit

    def send_400_response(self, msg: str) -> None:
        """What the parser cannot read (uvicorn answers it in plain text): a request line of
        an HTTP version it does not know gets ``505``, anything else ``400``; both after the
        answers to the requests read before it on this connection."""
        answer = _MALFORMED
        for version in _VERSION_IN_LINE.findall(self._last_read):
            if version not in (b"1.0", b"1.1"):
                answer = _VERSION_NOT_SUPPORTED
        self._refuse(answer)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._answer_last is not None and not self._answering_earlier():
            answer, self._answer_last = self._answer_last, None
            self._write_and_close(answer)

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_message = False
        if not self._refused:
            super().on_message_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        # A client that stops reading its answer has the read deadline to start again.
        if self._write_deadline is None:
            self._write_deadline = self.loop.call_later(self.read_timeout, self.transport.abort)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None

    def _idle(self) -> bool:
        """No request of this connection is being served."""
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _read_timed_out(self) -> None:
        self._deadline = None
        if self.cycle is not None and self.cycle.response_started and not self._idle():
            self.transport.close()
        else:
            self._refuse(_TIMED_OUT)

    def _refuse(self, response: bytes) -> None:
        """Read nothing more and answer ``response``, then close: at once, or, when requests
        read before on this connection are still being answered, after their answers (a
        request that ran, a job that was created, keeps its answer)."""
        if self._refused:
            return  # the first refusal is the answer (the parser may refuse the same bytes)
        self._refused = True
        self._disarm()
        if self._answering_earlier():
            self._answer_last = response
        else:
            self._write_and_close(response)

    def _answering_earlier(self) -> bool:
        """Requests read whole before the one refused are still being answered (a request
        whose body is still arriving is the one refused: it is not waited for)."""
        cycle = self.cycle
        if self.pipeline:
            return True
        return cycle is not None and not cycle.response_complete and not cycle.more_body

    def _write_and_close(self, response: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()


def protocol_for(settings: Settings) -> type[ApiHttpProtocol]:
    """``ApiHttpProtocol`` with the settings' read deadline and body limit."""
    limits = {"read_timeout": settings.api_read_timeout, "max_body_bytes": settings.max_body_bytes}
    return type("ApiHttpProtocol", (ApiHttpProtocol,), limits)


class ApiWorker(UvicornWorker):  # type: ignore[misc]
    """gunicorn's worker for the API: uvloop, the protocol above, the settings' limits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = Settings.from_env()
        self.CONFIG_KWARGS = {
            "loop": "uvloop",
            "http": protocol_for(settings),
            "lifespan": "on",
            # Requests are counted and timed by the metrics; a line each would be noise.
            "access_log": False,
            # Past this many open connections (or requests in flight) a worker answers 503.
            "limit_concurrency": settings.api_max_connections,
            # The API reads no client address, and X-Forwarded-Proto only named the scheme
            # of a request's span: no wrapper inspecting every request's headers for them.
            "proxy_headers": False,
        }
        super().__init__(*args, **kwargs)
        # uvicorn's own lines (a malformed request, the connection limit, an app error) go
        # through the root logger's JSON renderer like every other line.
        for name in ("uvicorn", "uvicorn.error"):
            logger = logging.getLogger(name)
            logger.handlers = []
            logger.propagate = True
        # No access lines: uvicorn's protocol formats one per request whenever its logger
        # has a handler anywhere up the tree, whatever its level.
        access = logging.getLogger("uvicorn.access")
        access.handlers = []
        access.propagate = False
        # SIGTERM: stop accepting, let requests in flight finish for up to gunicorn's
        # graceful timeout, then close.
        self.config.timeout_graceful_shutdown = self.cfg.graceful_timeout
        _allow_open_files(settings.api_max_connections + 256)


def _allow_open_files(wanted: int) -> None:
    """Raise this process's soft limit on open files towards ``wanted`` (within the hard
    limit), so the connection limit, not the descriptor limit, is what a client meets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
