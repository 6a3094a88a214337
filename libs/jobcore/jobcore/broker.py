"""The Dramatiq broker Jobcore runs on, and sending a job's message by name.

Set-up lives here so another broker (RabbitMQ) can be added behind the same two
functions: ``build_broker`` and ``MessageSender``. The API never imports actor code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.errors import ConnectionClosed

from jobcore.message_options import GENERATION_OPTION, TRACEPARENT_OPTION
from jobcore.outages import Backoff, StoreOutage
from jobcore.settings import Settings
from jobcore.store import keys
from jobcore.store.connection import connect
from jobcore.store.transitions import ReadyMessage

#: Attribute set on a message proxy whose ack must put the message back on its queue.
_RELEASE_ATTRIBUTE = "_jobcore_release"
#: The consumers of this process (one per queue) waiting out an outage: logged once for all.
_CONSUMERS = StoreOutage("broker consumers")


def release_on_ack(message: MessageProxy) -> None:
    """Make the ack of ``message`` a requeue: it goes back to its queue, body and id intact
    (a process shutting down received it but starts nothing)."""
    setattr(message, _RELEASE_ATTRIBUTE, True)


class JobcoreRedisConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, with two changes for graceful shutdowns: an ack of a
    released message requeues it, and closing requeues the messages fetched but not yet
    handed to a worker thread (Dramatiq leaves those to its dead-worker maintenance). And
    one for outages: a fetch that cannot reach Redis backs off and answers "nothing yet"
    (``jobcore.outages``) instead of stopping the consumer, which Dramatiq would log at
    CRITICAL and restart every 3 s, per queue, for as long as Redis is down."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._backoff = Backoff()

    def __next__(self) -> MessageProxy | None:
        # Only a fetch talks to Redis: a message from the cache, or nothing fetched because
        # enough are outstanding, says nothing about whether Redis is back.
        fetches = not self.message_cache and self.outstanding_message_count < self.prefetch
        began = _CONSUMERS.began()
        try:
            message = super().__next__()  # type: ignore[no-untyped-call]
        except (ConnectionClosed, redis.RedisError) as exc:
            _CONSUMERS.failed(exc)
            time.sleep(self._backoff.next())
            return None
        if fetches:
            _CONSUMERS.succeeded(began)
            self._backoff.reset()
        return message  # type: ignore[no-any-return]

    def ack(self, message: MessageProxy) -> None:
        if not getattr(message, _RELEASE_ATTRIBUTE, False):
            super().ack(message)  # type: ignore[no-untyped-call]
            return
        try:
            # Dramatiq's own requeue: the id leaves this worker's acks and is pushed back.
            self.broker.do_requeue(self.queue_name, message.options["redis_message_id"])
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
        finally:
            self.queued_message_ids.discard(message.message_id)

    def close(self) -> None:
        cached = [dramatiq.Message.decode(data) for data in self.message_cache if data]
        self.message_cache = []
        try:
            if cached:
                self.requeue(cached)  # type: ignore[no-untyped-call]
        except redis.RedisError:
            # Redis is gone: they stay in this worker's acks, which Dramatiq's maintenance
            # requeues once this worker's heartbeat is stale.
            pass
        super().close()


class JobcoreRedisBroker(RedisBroker):
    """Dramatiq's Redis broker with ``JobcoreRedisConsumer``."""

    @property
    def consumer_class(self) -> type[JobcoreRedisConsumer]:
        return JobcoreRedisConsumer


def build_broker(settings: Settings) -> RedisBroker:
    """The Redis broker, set as Dramatiq's global broker, with no middleware yet: each
    process adds its own list in order (``execution.middleware``)."""
    # The same short timeouts as every Jobcore call: an enqueue against a hung Redis
    # fails within one timeout instead of redis-py's default retries.
    client = connect(settings, decode_responses=False)
    broker = JobcoreRedisBroker(  # type: ignore[no-untyped-call]
        client=client,
        namespace=keys.DRAMATIQ_NAMESPACE,
        heartbeat_timeout=int(settings.broker_heartbeat_timeout * 1000),
        maintenance_chance=settings.broker_maintenance_chance,
        middleware=[],
    )
    dramatiq.set_broker(broker)
    return broker


@dataclass(frozen=True)
class PreparedMessage:
    """A message encoded for the record store to write in the same script that creates the
    record (``ready``), and the message itself for the broker's middleware."""

    ready: ReadyMessage
    message: dramatiq.Message[Any]


def job_message(
    job_id: str,
    actor_name: str,
    queue: str,
    generation: int,
    *,
    traceparent: str = "",
    redis_message_id: str = "",
) -> dramatiq.Message[Any]:
    """The message that starts one generation of a job: its id is the job id, its payload
    stays in the record. ``redis_message_id`` is the Redis broker's own id for a message
    Jobcore writes itself (``MessageSender.prepare``); the broker sets it otherwise."""
    options: dict[str, Any] = {GENERATION_OPTION: generation}
    if traceparent:
        options[TRACEPARENT_OPTION] = traceparent
    if redis_message_id:
        options["redis_message_id"] = redis_message_id
    return dramatiq.Message(
        queue_name=queue,
        actor_name=actor_name,
        args=(),
        kwargs={},
        options=options,
        message_id=job_id,
    )


class MessageSender:
    """Prepares a new job's message for the create script to write with its record: ids are
    job ids, payloads stay in the record. (Every later message of a job is written by the
    script that moves its record: ``lua/_records.lua``'s ``send_message``.)"""

    def __init__(self, broker: RedisBroker) -> None:
        self.broker = broker

    def prepare(
        self, job_id: str, actor_name: str, queue: str, generation: int, *, traceparent: str = ""
    ) -> PreparedMessage:
        """The message of a new job, encoded as Dramatiq's Redis broker would enqueue it."""
        redis_message_id = str(uuid4())
        message = job_message(
            job_id,
            actor_name,
            queue,
            generation,
            traceparent=traceparent,
            redis_message_id=redis_message_id,
        )
        self.broker.emit_before("enqueue", message, None)
        ready = ReadyMessage(
            queue_key=keys.ready_queue(queue, self.broker.namespace),
            messages_key=keys.messages(queue, self.broker.namespace),
            message_id=redis_message_id,
            body=message.encode(),
        )
        return PreparedMessage(ready, message)

    def prepared_sent(self, prepared: PreparedMessage) -> None:
        """Tell the broker's middleware a prepared message was enqueued with its record."""
        self.broker.emit_after("enqueue", prepared.message, None)
