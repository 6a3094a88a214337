"""Prometheus metrics, every one named ``jobcore_*``, and how a process exposes them.

Several processes share one scrape target: gunicorn forks ``JOBCORE_API_WORKERS`` workers
behind the API's port and ``jobcore-worker`` runs several Dramatiq processes behind the
worker metrics port. Both use prometheus_client's multiprocess mode: each process writes
its counters and histograms to files under ``PROMETHEUS_MULTIPROC_DIR`` (made by
``metrics_files.prepare_multiprocess_dir`` before the command forks) and whichever
process answers a scrape sums the files, so a scrape sees every process, and counts
survive a process restart. Gauges read from Redis
are not kept here: the API computes them once, at scrape time.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector

from jobcore.model.states import AttemptOutcome
from jobcore.telemetry.metrics_files import MULTIPROC_DIR_ENV

#: Buckets of job durations, in seconds: from quick emails to the longest report (300 s).
JOB_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
#: Buckets of API request latency, in seconds.
REQUEST_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

# --- API -----------------------------------------------------------------------------

API_REQUESTS = Counter(
    "jobcore_api_requests_total",
    "HTTP requests answered by the API, by route template, method and status code.",
    ["route", "method", "status"],
)
API_REQUEST_DURATION = Histogram(
    "jobcore_api_request_duration_seconds",
    "Time the API took to answer, by route template and method.",
    ["route", "method"],
    buckets=REQUEST_DURATION_BUCKETS,
)

# --- producers (API, scheduler, command line) -----------------------------------------

JOBS_SUBMITTED = Counter(
    "jobcore_jobs_submitted_total",
    "Jobs accepted (idempotent replays excluded), by type.",
    ["type"],
)

# --- every process that waits out outages (``jobcore.outages``) ----------------------

STORE_UP = Gauge(
    "jobcore_store_up",
    "1 while this kind of process reaches Redis, 0 while one of its loops waits out an "
    "outage (the most recent report of any of its processes).",
    ["kind"],
    multiprocess_mode="mostrecent",
)

# --- workers -------------------------------------------------------------------------

JOBS_STARTED = Counter(
    "jobcore_jobs_started_total", "Attempts started by workers, by job type.", ["type"]
)
JOBS_SUCCEEDED = Counter(
    "jobcore_jobs_succeeded_total", "Attempts that completed their job, by job type.", ["type"]
)
JOBS_FAILED = Counter(
    "jobcore_jobs_failed_total",
    "Attempts that raised (each failed attempt counts), by job type.",
    ["type"],
)
JOBS_RETRIED = Counter(
    "jobcore_jobs_retried_total",
    "Failed attempts followed by a retry, by job type.",
    ["type"],
)
JOBS_DEAD_LETTERED = Counter(
    "jobcore_jobs_dead_lettered_total",
    "Jobs that failed for good and became dead letters, by job type.",
    ["type"],
)
JOB_OUTCOMES = Counter(
    "jobcore_job_outcomes_total",
    "How attempts ended, by job type and outcome: completed, retrying, failed (after its "
    "last attempt), failed-permanently, needs-human-check, requeued (by a graceful "
    "shutdown; not an attempt).",
    ["type", "outcome"],
)
JOB_DURATION = Histogram(
    "jobcore_job_duration_seconds",
    "Run time of one attempt, by job type and outcome (succeeded or failed).",
    ["type", "outcome"],
    buckets=JOB_DURATION_BUCKETS,
)
#: Outcomes of ``JOB_DURATION``.
OUTCOMES = ("succeeded", "failed")


_series: dict[tuple[MetricWrapperBase, tuple[str, ...]], Any] = {}


def series(metric: MetricWrapperBase, *labels: str) -> Any:
    """``metric``'s child for ``labels`` (in the metric's label order), looked up once per
    process: ``labels()`` takes a lock and builds its key on every call, costing more than
    the increment it serves."""
    key = (metric, labels)
    child = _series.get(key)
    if child is None:
        child = _series[key] = metric.labels(*labels)
    return child


def declare_job_types(names: list[str]) -> None:
    """Create every worker series at zero, so rates exist before a type's first job."""
    for name in names:
        for counter in (
            JOBS_STARTED,
            JOBS_SUCCEEDED,
            JOBS_FAILED,
            JOBS_RETRIED,
            JOBS_DEAD_LETTERED,
        ):
            counter.labels(type=name)
        for outcome in OUTCOMES:
            JOB_DURATION.labels(type=name, outcome=outcome)
        for ending in AttemptOutcome:
            JOB_OUTCOMES.labels(type=name, outcome=ending)


def exposition_registry() -> CollectorRegistry:
    """What a scrape of this command shows: every process's files, read at each scrape."""
    path = os.environ.get(MULTIPROC_DIR_ENV)
    if not path:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition format of ``registry``."""
    return generate_latest(registry)


__all__ = [
    "API_REQUESTS",
    "API_REQUEST_DURATION",
    "CONTENT_TYPE_LATEST",
    "JOBS_DEAD_LETTERED",
    "JOBS_FAILED",
    "JOBS_RETRIED",
    "JOBS_STARTED",
    "JOBS_SUBMITTED",
    "JOBS_SUCCEEDED",
    "JOB_DURATION",
    "JOB_OUTCOMES",
    "STORE_UP",
    "declare_job_types",
    "exposition_registry",
    "render",
    "series",
]
