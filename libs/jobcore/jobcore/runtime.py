"""Wiring shared by every process: settings → Redis → record store → broker → ``Jobs``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from jobcore.broker import MessageSender, build_broker
from jobcore.jobs import Jobs
from jobcore.model.catalogue import builtin_job_types
from jobcore.model.specs import JobTypes
from jobcore.settings import Settings
from jobcore.store.connection import connect
from jobcore.store.executor import Executor
from jobcore.store.record_store import RecordStore
from jobcore.store.replication import ReplicaAck


@dataclass
class Runtime:
    settings: Settings
    executor: Executor
    store: RecordStore
    broker: RedisBroker
    jobs: Jobs
    job_types: JobTypes

    @property
    def client(self) -> Any:
        """The Redis client behind the store (for tools and tests that look inside)."""
        return self.executor.client


def producer_middleware(runtime: Runtime) -> list[Middleware]:
    """The broker middleware of a process that only sends messages (API, scheduler, CLI):
    none, since each message carries the W3C context its record keeps (workers use
    ``execution.middleware``)."""
    return []


def build_runtime(
    settings: Settings,
    *,
    job_types: JobTypes | None = None,
    middleware: Callable[[Runtime], list[Middleware]] = producer_middleware,
) -> Runtime:
    """Everything a Jobcore process needs; ``middleware`` gives the broker's middleware, in
    order, once the runtime exists."""
    types = job_types or builtin_job_types()
    executor = Executor(connect(settings), ReplicaAck.from_settings(settings))
    store = RecordStore(executor)
    broker = build_broker(settings)
    # Its consumers (in a worker process) claim and finish jobs through the store.
    broker.attach(executor, settings)
    runtime = Runtime(
        settings,
        executor,
        store,
        broker,
        Jobs(settings, store, MessageSender(broker), types),
        types,
    )
    for each in middleware(runtime):
        broker.add_middleware(each)
    return runtime
