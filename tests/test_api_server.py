"""gunicorn's options for the API: its worker class, and the address its start-up line names."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from gunicorn.config import Config

from jobcore.settings import Settings
from jobcore_api.serve import ApiLogger, gunicorn_options


def _logger(options: dict[str, Any]) -> ApiLogger:
    config = Config()
    for key, value in options.items():
        config.set(key, value)
    return ApiLogger(config)


@pytest.fixture
def access_level() -> Any:
    """gunicorn's logger applies its logging config to the process: put it back after."""
    loggers = [logging.getLogger(n) for n in ("", "gunicorn.error", "gunicorn.access")]
    saved = [(lg, lg.level, list(lg.handlers), lg.propagate, lg.disabled) for lg in loggers]
    yield logging.getLogger("gunicorn.access")
    for logger, level, handlers, propagate, disabled in saved:
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate, logger.disabled = propagate, disabled


def test_the_api_uses_its_logger_and_the_event_loop_worker():
    options = gunicorn_options(Settings(), "127.0.0.1:0")
    assert options["logger_class"] is ApiLogger
    assert options["worker_class"] == "jobcore_api.asgi_worker.ApiWorker"


def test_the_listening_line_names_the_address_when_each_worker_binds_its_own(
    access_level, monkeypatch
):
    logger = _logger(gunicorn_options(Settings(), "127.0.0.1:8123"))
    lines: list[str] = []
    monkeypatch.setattr(logger.error_log, "info", lambda msg, *args, **kw: lines.append(msg % args))
    logger.info("Listening at: %s (%s)", "", 4242)
    assert lines and lines[0].startswith("Listening at: http://127.0.0.1:8123 (4242")


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True


def _cycle(method: str = "POST") -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(response_started=False, scope={"method": method})


def test_an_answer_s_head_goes_out_with_its_body_and_a_100_continue_at_once():
    from jobcore_api.asgi_worker import _OneWriteAnswer

    transport, cycle = _Transport(), _cycle()
    answer = _OneWriteAnswer(transport, cycle)  # type: ignore[arg-type]
    answer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # before the answer starts: sent now
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    cycle.response_started = True
    answer.write(b"HTTP/1.1 202 Accepted\r\n\r\n")  # the head: held
    assert len(transport.writes) == 1
    answer.write(b'{"status": "accepted"}')  # the body: one write with the head
    answer.write(b"more")  # a later chunk of a streamed body: as it comes
    assert transport.writes[1:] == [
        b'HTTP/1.1 202 Accepted\r\n\r\n{"status": "accepted"}',
        b"more",
    ]


def test_a_head_answer_or_a_closing_connection_sends_the_held_head():
    from jobcore_api.asgi_worker import _OneWriteAnswer

    transport, cycle = _Transport(), _cycle("HEAD")
    cycle.response_started = True
    _OneWriteAnswer(transport, cycle).write(b"HTTP/1.1 200 OK\r\n\r\n")  # type: ignore[arg-type]
    assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\n"]
    transport, cycle = _Transport(), _cycle()
    answer = _OneWriteAnswer(transport, cycle)  # type: ignore[arg-type]
    cycle.response_started = True
    answer.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    answer.close()
    assert transport.writes == [b"HTTP/1.1 500 Internal Server Error\r\n\r\n"] and transport.closed
