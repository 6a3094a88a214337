"""Wiring shared by every process: settings → Redis → record store → broker → ``Jobs``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from jobcore.broker import MessageSender, build_broker
from jobcore.jobs import Jobs
from jobcore.model.specs import JobTypes, builtin_job_types
from jobcore.settings import Settings
from jobcore.store.connection import connect
from jobcore.store.record_store import RecordStore
from jobcore.telemetry.tracing import MessageTracing, stored_traceparent


@dataclass
class Runtime:
    settings: Settings
    client: redis.Redis
    store: RecordStore
    broker: RedisBroker
    jobs: Jobs
    job_types: JobTypes


def build_runtime(
    settings: Settings,
    *,
    job_types: JobTypes | None = None,
    middleware: Iterable[Middleware] = (),
) -> Runtime:
    types = job_types or builtin_job_types()
    client = connect(settings)
    store = RecordStore(client)
    # Message tracing first: its hooks wrap every other Jobcore middleware's.
    broker = build_broker(settings, [MessageTracing(stored_traceparent(client)), *middleware])
    jobs = Jobs(settings, store, MessageSender(broker), types)
    return Runtime(settings, client, store, broker, jobs, types)
