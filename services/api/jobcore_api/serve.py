"""``jobcore-api``: the Falcon ASGI app under gunicorn, each worker an event loop
(``asgi_worker.ApiWorker``: uvicorn with uvloop and httptools)."""

from __future__ import annotations

import argparse
import gc
import socket
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from jobcore.errors import ConfigurationError
from jobcore.model.catalogue import load_job_types
from jobcore.settings import Settings
from jobcore.startup import refuse_to_start_on_configuration_errors
from jobcore.telemetry.logs import configure_logging
from jobcore.telemetry.metrics_files import prepare_multiprocess_dir
from jobcore.telemetry.tracing import configure_tracing, shutdown_tracing
from jobcore_api.auth import parse_api_keys


class JobcoreGunicorn(BaseApplication):  # type: ignore[misc]
    """Gunicorn with its options given in code; the app is built in each worker after fork."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from jobcore_api.app import create_app

        settings = Settings.from_env()
        configure_logging(settings.log_level, service="api", redact=settings.redacted_fields)
        # Here, in each worker after the fork: a provider made before it misbehaves.
        configure_tracing("jobcore-api")
        app = create_app(settings)
        # Everything built so far lives as long as the worker: out of the collector's sight,
        # a full collection no longer walks it (tens of ms, a request's p99).
        gc.freeze()
        return app


#: gunicorn's start-up line naming its sockets.
_LISTENING = "Listening at: %s (%s)"
#: gunicorn's line for a socket it could not close (at exit, uvicorn's server has).
_CLOSING_FAILED = "Error while closing socket %s"


class ApiLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger naming the address in "Listening at": with ``SO_REUSEPORT`` each
    worker binds its own socket, so the arbiter has none to name and would log an empty
    address. (Requests are not logged one by one: the metrics count and time them.)
    """

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if msg == _CLOSING_FAILED and args and "Errno 9" in str(args[0]):
            return  # uvicorn closed the worker's socket already; gunicorn closes it again
        if msg == _LISTENING and args and not args[0]:
            addresses = ",".join(f"http://{address}" for address in self.cfg.bind)
            msg = "Listening at: %s (%s; each worker binds it with SO_REUSEPORT)"
            args = (addresses, *args[1:])
        super().info(msg, *args, **kwargs)


def gunicorn_options(settings: Settings, bind: str) -> dict[str, Any]:
    return {
        "bind": bind,
        "workers": settings.api_workers,
        "worker_class": "jobcore_api.asgi_worker.ApiWorker",
        "control_socket_disable": True,
        # SO_REUSEPORT lets the kernel spread connections over the workers (otherwise one
        # worker can take every keep-alive connection); ``refuse_taken_port`` keeps it from
        # letting a second API share the port with a stale one.
        "reuse_port": settings.api_reuse_port,
        "accesslog": None,
        "graceful_timeout": 10,
        "timeout": 30,
        "keepalive": 5,
        "logconfig_dict": gunicorn_logging(settings),
        "logger_class": ApiLogger,
        "worker_exit": _flush_spans,
    }


def gunicorn_logging(settings: Settings) -> dict[str, Any]:
    """gunicorn's own lines through Jobcore's JSON renderer (access lines only as warnings)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": settings.log_level.upper(), "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"level": settings.log_level.upper(), "propagate": True},
            # Requests are counted and timed by the metrics; a line each would be noise.
            "gunicorn.access": {"level": "WARNING", "propagate": True},
        },
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "formatters": {
            "json": {
                "()": "jobcore.telemetry.logs.json_formatter",
                "redact": sorted(settings.redacted_fields),
                "service": "api",
            }
        },
    }


def _flush_spans(arbiter: Any, worker: Any) -> None:
    shutdown_tracing()


def refuse_taken_port(bind: str) -> None:
    """Refuse to start if something already listens on ``bind`` (checked without
    SO_REUSEPORT, which would otherwise let a second API share the port silently)."""
    host, _, port = bind.rpartition(":")
    if not port.isdigit():
        return  # a unix socket or another form gunicorn checks itself
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]") or "0.0.0.0", int(port)))
        except OSError as exc:
            raise ConfigurationError(f"cannot listen on {bind}: {exc.strerror}") from exc


def main(argv: list[str] | None = None) -> None:
    with refuse_to_start_on_configuration_errors("api"):
        settings = Settings.from_env()
        parser = argparse.ArgumentParser(prog="jobcore-api", description=__doc__)
        parser.add_argument("--bind", default=f"{settings.api_host}:{settings.api_port}")
        args = parser.parse_args(argv)
        configure_logging(settings.log_level, service="api", redact=settings.redacted_fields)
        # Checked before the fork, so a bad setting stops the API once, not in every worker.
        parse_api_keys(settings.api_keys)
        load_job_types(settings.job_modules)
        if settings.api_reuse_port:
            refuse_taken_port(args.bind)
    # Before gunicorn forks: every worker writes its request metrics under one directory.
    prepare_multiprocess_dir("api")
    JobcoreGunicorn(gunicorn_options(settings, args.bind)).run()


if __name__ == "__main__":
    main()
