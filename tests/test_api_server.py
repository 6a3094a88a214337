"""gunicorn's options for the API: an access line is built only when it would be logged."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from gunicorn.config import Config

from jobcore.settings import Settings
from jobcore_api.serve import AccessLogOnDemand, gunicorn_options


def _logger(options: dict[str, Any]) -> AccessLogOnDemand:
    config = Config()
    for key, value in options.items():
        config.set(key, value)
    return AccessLogOnDemand(config)


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


def test_the_api_uses_the_on_demand_access_logger():
    options = gunicorn_options(Settings(), "127.0.0.1:0")
    assert options["logger_class"] is AccessLogOnDemand


def test_no_access_line_is_built_while_gunicorn_access_is_above_info(access_level, monkeypatch):
    logger = _logger(gunicorn_options(Settings(), "127.0.0.1:0"))
    assert not logger.access_log.isEnabledFor(logging.INFO)  # the shipped logging config
    built: list[object] = []
    monkeypatch.setattr(logger, "atoms", lambda *args: built.append(args) or {})
    logger.access(None, None, {}, timedelta(milliseconds=1))
    assert built == []

    access_level.setLevel(logging.INFO)
    logger.access(None, None, {}, timedelta(milliseconds=1))
    assert len(built) == 1
