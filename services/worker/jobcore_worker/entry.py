"""The module Dramatiq's CLI loads in each worker process: the broker with every actor bound.

``dramatiq jobcore_worker.entry`` (what ``jobcore-worker`` runs) imports this module,
which sets the broker *before* declaring any actor (Dramatiq's global-broker trap).
"""

from __future__ import annotations

from jobcore.execution.job_lifecycle import JobLifecycle, bind_implementations
from jobcore.execution.presence import WorkerPresence
from jobcore.execution.worker_metrics import JobMetrics
from jobcore.runtime import build_runtime
from jobcore.settings import Settings
from jobcore.telemetry.logs import configure_logging
from jobcore.telemetry.tracing import JobSpanDetails, configure_tracing
from jobcore_worker.jobs import IMPLEMENTATIONS
from jobcore_worker.plugins import load_plugins

settings = Settings.from_env()
configure_logging(settings.log_level, service="worker", redact=settings.redacted_fields)
configure_tracing("jobcore-worker")
job_types, implementations = load_plugins(settings.job_modules, IMPLEMENTATIONS)
runtime = build_runtime(settings, job_types=job_types)
presence = WorkerPresence(
    runtime, list(settings.queues or runtime.job_types.queues()), lambda: lifecycle.in_flight()
)
job_metrics = JobMetrics(runtime.job_types.names(), settings.worker_metrics_port)
# The lifecycle computes each attempt's outcome once and tells the metrics and the span.
lifecycle = JobLifecycle(runtime, presence.current_id, listeners=(job_metrics, JobSpanDetails()))
runtime.broker.add_middleware(presence)
runtime.broker.add_middleware(lifecycle)
runtime.broker.add_middleware(job_metrics)
actors = bind_implementations(runtime, implementations)
broker = runtime.broker
