"""A worker process's Dramatiq middleware, as one ordered list.

Dramatiq runs every ``before_*`` hook in list order and every ``after_*`` hook in reverse:
an entry's hooks wrap those of every entry below it.
"""

from __future__ import annotations

import logging

from dramatiq.middleware import Middleware, TimeLimit

from jobcore.execution.job_lifecycle import EXPECTED_ENDS, JobLifecycle
from jobcore.execution.span_details import JobSpanDetails
from jobcore.execution.worker_metrics import JobMetrics
from jobcore.execution.worker_presence import WorkerPresence
from jobcore.runtime import Runtime
from jobcore.telemetry.message_tracing import MessageTracing

#: The logger Dramatiq's worker threads report a failed message on.
DRAMATIQ_WORKER_THREAD_LOGGER = "dramatiq.worker.WorkerThread"


def worker_middleware(runtime: Runtime) -> list[Middleware]:
    """The middleware of a worker process, in the order it runs."""
    logging.getLogger(DRAMATIQ_WORKER_THREAD_LOGGER).addFilter(EXPECTED_ENDS)
    settings = runtime.settings
    queues = list(settings.queues or runtime.job_types.queues())
    metrics = JobMetrics(
        runtime.job_types.names(), settings.worker_metrics_port, settings.worker_metrics_host
    )
    presence = WorkerPresence(runtime, queues, lambda: lifecycle.in_flight())
    # The lifecycle computes each attempt's outcome once and tells the metrics and the span.
    lifecycle = JobLifecycle(runtime, presence.current_id, listeners=(metrics, JobSpanDetails()))
    return [
        # Time limits first (Dramatiq's own order): the timer is armed before anything else
        # and an overrun surfaces as the actor's exception, which every hook below sees.
        TimeLimit(),
        # The attempt's CONSUMER span starts before and ends after every hook below, so the
        # record's transitions are inside it.
        MessageTracing(),
        # The process's heartbeat beats from boot, before any job starts under its id, and
        # stops only after every job has been recorded at shutdown.
        presence,
        # Starts each job's record before the actor runs and records how it ended after;
        # at shutdown it stops starting jobs and asks interruptible ones to stop.
        lifecycle,
        # Serves the worker's metrics port (it counts through the lifecycle's listeners).
        metrics,
    ]
