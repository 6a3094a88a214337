"""The module Dramatiq's CLI loads in each worker process: the broker with every actor bound.

``dramatiq jobcore_worker.entry`` (what ``jobcore-worker`` runs) imports this module,
which sets the broker and its middleware *before* declaring any actor (Dramatiq's
global-broker trap).
"""

from __future__ import annotations

from jobcore.execution.job_lifecycle import bind_implementations
from jobcore.execution.middleware import worker_middleware
from jobcore.runtime import build_runtime
from jobcore.settings import Settings
from jobcore.telemetry.logs import configure_logging
from jobcore.telemetry.tracing import configure_tracing
from jobcore_worker.jobs import IMPLEMENTATIONS
from jobcore_worker.plugins import load_plugins

settings = Settings.from_env()
configure_logging(settings.log_level, service="worker", redact=settings.redacted_fields)
configure_tracing("jobcore-worker")
job_types, implementations = load_plugins(settings.job_modules, IMPLEMENTATIONS)
runtime = build_runtime(settings, job_types=job_types, middleware=worker_middleware)
actors = bind_implementations(runtime, implementations)
broker = runtime.broker
