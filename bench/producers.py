"""The two producers of a bench run: Jobcore's ``Jobs.submit`` and a bare Dramatiq enqueue.

Each can also send to a *parked* broker namespace: messages wait there, invisible to the
workers, until ``release_parked`` moves them to the real queue in one step, so a pre-filled
queue can be drained by workers that are already warm.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import dramatiq
import redis

from bench.bare_broker import QUEUE, bare_broker
from jobcore.broker import MessageSender, build_broker
from jobcore.clock import now_ms
from jobcore.intake.submission import SubmissionParser
from jobcore.jobs import Jobs
from jobcore.runtime import build_runtime
from jobcore.settings import Settings
from jobcore.store.keys import DRAMATIQ_NAMESPACE

#: Broker namespace where pre-filled messages wait for ``release_parked``.
PARKED_NAMESPACE = "bench-parked"


def ready_list(namespace: str = DRAMATIQ_NAMESPACE) -> str:
    return f"{namespace}:{QUEUE}"


def message_hash(namespace: str = DRAMATIQ_NAMESPACE) -> str:
    """Dramatiq's hash of the queue's messages: an entry leaves when its message is acked."""
    return f"{namespace}:{QUEUE}.msgs"


def wake_list(namespace: str = DRAMATIQ_NAMESPACE) -> str:
    """Jobcore's wake list of the queue (a bare Dramatiq worker never reads it)."""
    return f"{namespace}:{QUEUE}.wake"


def release_parked(client: redis.Redis) -> None:
    """Move every parked message to the real queue at once (the queue must be empty), and
    wake the idle consumers as Jobcore's scripts do when they write a message."""
    pipe = client.pipeline(transaction=True)
    pipe.rename(message_hash(PARKED_NAMESPACE), message_hash())
    pipe.rename(ready_list(PARKED_NAMESPACE), ready_list())
    pipe.delete(wake_list(PARKED_NAMESPACE))
    pipe.lpush(wake_list(), *[1] * 16)
    pipe.execute()


class JobcoreProducer:
    """Submits ``dummy`` jobs with ``{}`` and an idempotency key, as ``POST /jobs`` does."""

    name = "jobcore"

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.runtime = build_runtime(settings)
        self.parser = SubmissionParser(self.runtime.job_types)
        # The same broker as Jobcore's in every respect but the namespace its messages go to.
        parked = build_broker(settings)
        parked.namespace = PARKED_NAMESPACE
        dramatiq.set_broker(self.runtime.broker)
        runtime = self.runtime
        self.parked_jobs = Jobs(settings, runtime.store, MessageSender(parked), runtime.job_types)
        self.run_id = run_id
        self._numbers = itertools.count(1)

    def submit(self, *, parked: bool = False, probe: bool = False) -> str:
        key = f"{self.run_id}-{next(self._numbers)}"
        body = {"type": "dummy", "payload": {}, "idempotencyKey": key}
        jobs = self.parked_jobs if parked else self.runtime.jobs
        return jobs.submit(self.parser.parse(body, now_ms=now_ms())).job_id


class BareProducer:
    """Enqueues ``bench.bare_actors`` messages by name, as ``actor.send()`` does."""

    name = "bare dramatiq"

    def __init__(self, redis_url: str) -> None:
        self.broker = bare_broker(redis_url)
        self.parked = bare_broker(redis_url, PARKED_NAMESPACE)

    def submit(self, *, parked: bool = False, probe: bool = False) -> str:
        args: tuple[Any, ...] = (time.time_ns() // 1_000_000,) if probe else ()
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=QUEUE,
            actor_name="latency_probe" if probe else "noop",
            args=args,
            kwargs={},
            options={},
        )
        (self.parked if parked else self.broker).enqueue(message)
        return message.message_id
