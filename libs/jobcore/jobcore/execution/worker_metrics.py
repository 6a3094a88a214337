"""A worker's job metrics: a Dramatiq middleware counting attempts, and the metrics port.

Every Dramatiq process of one ``jobcore-worker`` writes to the same multiprocess directory
(see ``jobcore.telemetry.metrics``); one of them serves the files on
``JOBCORE_WORKER_METRICS_PORT``.
The others keep trying to bind the port, so when the serving process dies another one
takes over within ``TAKEOVER_INTERVAL``.
"""

from __future__ import annotations

import errno
import threading
import time
from typing import Any
from wsgiref.simple_server import WSGIServer

import dramatiq
import structlog
from dramatiq.middleware import Middleware
from prometheus_client import start_http_server

from jobcore.execution.context import JobContext
from jobcore.model.states import AttemptOutcome
from jobcore.telemetry import metrics

#: Seconds between attempts to bind the metrics port while another process holds it.
TAKEOVER_INTERVAL = 5.0

log = structlog.get_logger("jobcore.telemetry.metrics")


class JobMetrics(Middleware):
    """Counts each attempt's start and outcome (an ``AttemptListener`` of ``JobLifecycle``,
    which computes the outcome once), and serves the worker's metrics port."""

    def __init__(self, job_types: list[str], port: int, host: str = "127.0.0.1") -> None:
        self.job_types = job_types
        self.port = port
        self.host = host
        self._started = threading.local()
        self._stop = threading.Event()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    # --- counting ------------------------------------------------------------------

    def attempt_started(self, job: JobContext) -> None:
        metrics.series(metrics.JOBS_STARTED, job.type).inc()
        self._started.at = time.perf_counter()

    def attempt_ended(
        self, job: JobContext, outcome: AttemptOutcome, exception: BaseException | None
    ) -> None:
        started_at = getattr(self._started, "at", None)
        self._started.at = None
        metrics.series(metrics.JOB_OUTCOMES, job.type, outcome).inc()
        if started_at is None or outcome is AttemptOutcome.REQUEUED:
            return  # a requeue by shutdown is not an attempt
        succeeded = outcome is AttemptOutcome.COMPLETED
        duration = metrics.series(
            metrics.JOB_DURATION, job.type, "succeeded" if succeeded else "failed"
        )
        duration.observe(time.perf_counter() - started_at)
        if succeeded:
            metrics.series(metrics.JOBS_SUCCEEDED, job.type).inc()
            return
        metrics.series(metrics.JOBS_FAILED, job.type).inc()
        if outcome is AttemptOutcome.RETRYING:
            metrics.series(metrics.JOBS_RETRIED, job.type).inc()
        else:
            metrics.series(metrics.JOBS_DEAD_LETTERED, job.type).inc()

    # --- the metrics port ----------------------------------------------------------

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        metrics.declare_job_types(self.job_types)
        if not self.port:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="jobcore-metrics", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                self._server, _thread = start_http_server(
                    self.port, self.host, registry=metrics.exposition_registry()
                )
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    # Not another process holding it: a host that is no address of this
                    # machine, or a port it may not bind. Said once by each worker process;
                    # counting goes on.
                    log.error(
                        "worker metrics cannot listen",
                        host=self.host,
                        port=self.port,
                        reason=str(exc),
                        fix="set JOBCORE_WORKER_METRICS_HOST to an address of this machine "
                        "(127.0.0.1, 0.0.0.0) and JOBCORE_WORKER_METRICS_PORT to a free port",
                    )
                    return
                self._stop.wait(TAKEOVER_INTERVAL)
                continue
            log.info("worker metrics served", port=self.port)
            return
