"""The Dramatiq broker Jobcore runs on, and sending a job's message by name.

Set-up lives here so another broker (RabbitMQ) can be added behind the same two
functions: ``build_broker`` and ``MessageSender``. The API never imports actor code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.errors import BrokerConnectionError
from dramatiq.middleware import Middleware, ShutdownNotifications, TimeLimit

from jobcore.errors import StoreUnavailable
from jobcore.redis_connection import connect
from jobcore.settings import Settings

#: Message option carrying the record generation the message was sent for.
GENERATION_OPTION = "jobcore_generation"
#: Message option marking a message first sent to a delay queue.
DELAYED_OPTION = "jobcore_delayed"
#: Message option carrying the W3C trace context of the job.
TRACEPARENT_OPTION = "traceparent"
#: Dramatiq's Redis namespace (its keys are the broker's, listed here for depth reads only).
DRAMATIQ_NAMESPACE = "dramatiq"


def ready_queue_key(queue: str) -> str:
    """Dramatiq's Redis list holding the ids of the queue's ready messages."""
    return f"{DRAMATIQ_NAMESPACE}:{queue}"


def build_broker(settings: Settings, middleware: Iterable[Middleware] = ()) -> RedisBroker:
    """The Redis broker with Jobcore's middleware, set as Dramatiq's global broker.

    Order matters: TimeLimit and ShutdownNotifications raise inside the actor; Jobcore's
    own middleware comes after them so its ``after_*`` hooks run first and see the
    outcome of every attempt. Dramatiq's ``Retries``, ``AgeLimit``, ``Callbacks`` and
    ``Pipelines`` are left out: retries and dead letters are Jobcore's records.
    """
    # The same short timeouts as every Jobcore call: an enqueue against a hung Redis
    # fails within one timeout instead of redis-py's default retries.
    client = connect(settings, decode_responses=False)
    broker = RedisBroker(  # type: ignore[no-untyped-call]
        client=client,
        namespace=DRAMATIQ_NAMESPACE,
        heartbeat_timeout=int(settings.broker_heartbeat_timeout * 1000),
        maintenance_chance=settings.broker_maintenance_chance,
        middleware=[TimeLimit(), ShutdownNotifications(), *middleware],
    )
    dramatiq.set_broker(broker)
    return broker


class MessageSender:
    """Enqueues a job's message by actor name: ids are job ids, payloads stay in the record."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    def send(
        self,
        job_id: str,
        actor_name: str,
        queue: str,
        generation: int,
        *,
        delay_ms: int | None = None,
        traceparent: str = "",
    ) -> None:
        options: dict[str, Any] = {GENERATION_OPTION: generation}
        if traceparent:
            options[TRACEPARENT_OPTION] = traceparent
        if delay_ms:
            options[DELAYED_OPTION] = True
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=queue,
            actor_name=actor_name,
            args=(),
            kwargs={},
            options=options,
            message_id=job_id,
        )
        try:
            self.broker.enqueue(message, delay=delay_ms or None)
        except (BrokerConnectionError, redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"the broker is unreachable: {exc}") from exc
        except redis.ResponseError as exc:
            raise StoreUnavailable(f"the broker refused the message: {exc}") from exc
