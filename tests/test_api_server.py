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
