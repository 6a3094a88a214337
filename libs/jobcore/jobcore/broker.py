"""The Dramatiq broker Jobcore runs on, and a new job's message for the create script.

``JobcoreRedisBroker`` is Dramatiq's Redis broker whose consumers claim jobs as they fetch
them and finish them as they ack them (``JobcoreRedisConsumer``); ``MessageSender``
prepares the message a new job is created with. The API never imports actor code.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import uuid4

import dramatiq
import redis
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.encoder import JSONEncoder
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import Middleware

from jobcore import json_text
from jobcore.clock import now_ms
from jobcore.errors import StoreUnavailable
from jobcore.message_options import GENERATION_OPTION, TRACEPARENT_OPTION
from jobcore.model.states import AttemptOutcome
from jobcore.outages import Backoff, StoreOutage
from jobcore.settings import Settings
from jobcore.store import keys, transitions
from jobcore.store.connection import connect
from jobcore.store.executor import Executor
from jobcore.store.transitions import (
    Claim,
    Claimed,
    Fetched,
    MessageAck,
    ReadyMessage,
    Released,
)

#: Attribute of a message proxy holding its job's ``Claim``.
_CLAIM_ATTRIBUTE = "_jobcore_claim"
#: Attribute of a message proxy holding how its attempt ended (``AttemptEnd``).
_END_ATTRIBUTE = "_jobcore_end"
#: The consumers of this process (one per queue) waiting out an outage: logged once for all.
_CONSUMERS = StoreOutage("broker consumers")
#: Longest wait of an idle consumer for a wake-up, in seconds (it fetches again after it).
WAKE_WAIT = 1.0
#: Claims of a process whose threads are all busy still refresh its Dramatiq heartbeat this
#: often (a fraction of the heartbeat timeout), so its fetched messages are not requeued.
HEARTBEAT_SHARE = 0.3

log = structlog.get_logger("jobcore.broker")


class AttemptEnd(Protocol):
    """How an attempt ended, recorded by the ack of its message (``JobLifecycle``)."""

    def record(self, ack: MessageAck) -> None: ...


def claim_of(message: MessageProxy) -> Claim | None:
    """The claim a Jobcore consumer fetched ``message`` with, if any."""
    return getattr(message, _CLAIM_ATTRIBUTE, None)


def end_attempt(message: MessageProxy, end: AttemptEnd) -> None:
    """Make the ack of ``message`` record ``end`` (in the same script as the ack)."""
    setattr(message, _END_ATTRIBUTE, end)


class ClaimSlots:
    """The worker threads of this process not yet handed a job: a fetch claims at most that
    many, so no claimed job waits in memory for a thread."""

    def __init__(self, threads: int) -> None:
        self.free = threads
        self._changed = threading.Condition()

    def take_all(self) -> int:
        """Take every free thread; how many."""
        with self._changed:
            taken, self.free = self.free, 0
            return taken

    def give_back(self, count: int) -> None:
        if count:
            with self._changed:
                self.free += count
                if self.free == count:  # consumers wait only while none is free
                    self._changed.notify_all()

    def wait_free(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.free > 0, timeout)


class JobcoreRedisConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, with Jobcore's transitions riding its traffic.

    A fetch claims its jobs for this process (``lua/claim.lua``, Dramatiq's fetch and
    maintenance included), at most as many as the process has free threads; an idle
    consumer waits on its queue's wake list (``BLPOP``) instead of polling. The ack of a
    finished attempt records its end in the same script (``lua/finish.lua``); the ack of a
    claimed message that did not run (a stopping process) gives it back (``lua/release.lua``),
    as closing does for claimed messages not yet handed to a thread. A fetch that cannot
    reach Redis backs off and answers "nothing yet" (``jobcore.outages``) instead of stopping
    the consumer, which Dramatiq would log at CRITICAL and restart every 3 s. Delay queues
    (``.DQ``), which Jobcore does not use, stay plain Dramatiq.
    """

    broker: JobcoreRedisBroker

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._backoff = Backoff()
        self.claims = not self.queue_name.endswith(".DQ") and self.broker.executor is not None
        # Dramatiq gives each queue's consumer twice the process's threads as its prefetch.
        self.slots = self.broker.claim_slots(max(self.prefetch // 2, 1))
        self._claimed_at = 0.0
        # Each claim has a token; a claim whose reply never came (Redis was slow past the
        # timeout, yet may have run it) is settled by the next one (``transitions.claim``).
        self._token_prefix = uuid4().hex[:12]
        self._claims = itertools.count(1)
        #: The token of the last claim whose reply arrived (at first one no claim has).
        self._received = f"{self._token_prefix}-0"
        self._unsure = False

    # --- fetching ------------------------------------------------------------------

    def __next__(self) -> MessageProxy | None:
        if not self.claims:
            return self._plain_next()
        if self.message_cache:
            return self._from_cache()
        if not self.broker.claiming:
            # The process is stopping: it starts nothing more.
            time.sleep(self.timeout / 1000)
            return None
        wanted = self.slots.take_all()
        if not wanted:
            self.slots.wait_free(self.timeout / 1000)
            if time.monotonic() - self._claimed_at > self._heartbeat_every():
                # Every thread is busy: a claim of nothing keeps Dramatiq's heartbeat fresh.
                self._try_claim(0)
            return None
        fetched = self._try_claim(wanted)
        if fetched is None:
            self.slots.give_back(wanted)
            return None
        self.slots.give_back(wanted - len(fetched))
        if fetched:
            self.message_cache = fetched
            return self._from_cache()
        self._wait_for_work()
        return None

    def _try_claim(self, count: int) -> list[Fetched] | None:
        """``_claim``'s messages, or ``None`` after backing off from an outage."""
        token = f"{self._token_prefix}-{next(self._claims)}"
        try:
            return self._claim(count, token).fetched
        except (StoreUnavailable, redis.RedisError) as exc:
            # Redis may have run the claim without this process hearing back.
            self._unsure = True
            _CONSUMERS.failed(exc)
            time.sleep(self._backoff.next())
            return None

    def _claim(self, count: int, token: str) -> Claimed:
        broker = self.broker
        assert broker.executor is not None
        began = _CONSUMERS.began()
        claimed = broker.executor.run(
            transitions.claim(
                self.queue_name,
                broker.broker_id,
                count,
                now_ms(),
                heartbeat_timeout_ms=broker.heartbeat_timeout,
                maintenance=bool(broker._should_do_maintenance("fetch")),
                dead_message_ttl_ms=broker.dead_message_ttl,
                token=token,
                received=self._received if self._unsure else "",
            )
        )
        self._received, self._unsure = token, False
        _CONSUMERS.succeeded(began)
        self._backoff.reset()
        self._claimed_at = time.monotonic()
        for job_id, why in claimed.skipped:
            log.info("message skipped", job_id=job_id, reason=why)
        return claimed

    def _from_cache(self) -> MessageProxy:
        fetched: Fetched = self.message_cache.pop(0)
        # Bodies are JSON (Jobcore's scripts and Dramatiq's default encoder write them), and
        # the store's client already decoded them to text: no round trip through bytes.
        message = MessageProxy(dramatiq.Message(**json.loads(fetched.body)))
        setattr(message, _CLAIM_ATTRIBUTE, fetched.claim)
        self.queued_message_ids.add(message.message_id)
        return message

    def _wait_for_work(self) -> None:
        """Block until a script writes a message to this queue, or ``WAKE_WAIT``."""
        try:
            self.broker.wake_client().blpop(
                [keys.wake(self.queue_name, self.broker.namespace)], timeout=WAKE_WAIT
            )
        except redis.RedisError:
            time.sleep(self._backoff.next())

    def _heartbeat_every(self) -> float:
        return float(self.broker.heartbeat_timeout) / 1000 * HEARTBEAT_SHARE

    def _plain_next(self) -> MessageProxy | None:
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

    # --- acking --------------------------------------------------------------------

    def ack(self, message: MessageProxy) -> None:
        if not self.claims:
            super().ack(message)  # type: ignore[no-untyped-call]
            return
        try:
            end: AttemptEnd | None = getattr(message, _END_ATTRIBUTE, None)
            if end is not None:
                end.record(self._ack_of(message))
            elif claim_of(message) is not None:
                # Claimed but never run (a stopping process, a hook that raised): it goes
                # back to its queue untouched for another process.
                self._release([message])
            else:
                super().ack(message)  # type: ignore[no-untyped-call]
        except StoreUnavailable as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
        finally:
            self.queued_message_ids.discard(message.message_id)
            self.slots.give_back(1)

    def nack(self, message: MessageProxy) -> None:
        """Dramatiq rejects a message whose actor this process lacks (its consumer thread
        never hands it to a worker): a claimed job then becomes a dead letter saying so,
        instead of staying claimed while its message goes to Dramatiq's dead letters."""
        claim = claim_of(message) if self.claims else None
        try:
            if claim is None:
                super().nack(message)  # type: ignore[no-untyped-call]
                return
            assert self.broker.executor is not None
            reason = (
                f"failed permanently: worker process {self.broker.broker_id} has no "
                f"implementation of job type {claim.job_type!r} (load its module with "
                "JOBCORE_JOB_MODULES, then retry it)"
            )
            self.broker.executor.run(
                transitions.finish(
                    message.message_id,
                    int(message.options[GENERATION_OPTION]),
                    self.broker.broker_id,
                    now_ms(),
                    AttemptOutcome.FAILED_PERMANENTLY,
                    error=reason,
                    failed_reason=reason,
                    attempt=claim.attempt,
                    ack=self._ack_of(message),
                )
            )
            log.error("job failed", job_id=message.message_id, failed_reason=reason)
        except StoreUnavailable as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
        finally:
            self.queued_message_ids.discard(message.message_id)
            if self.claims:
                self.slots.give_back(1)

    def _ack_of(self, message: MessageProxy) -> MessageAck:
        return MessageAck(
            keys.acks(self.broker.broker_id, self.queue_name),
            keys.messages(self.queue_name),
            message.options["redis_message_id"],
        )

    def requeue(self, messages: Any) -> None:
        """Messages handed to this process's work queue but never run (a stopping worker):
        their claims are given back."""
        if not self.claims:
            super().requeue(messages)  # type: ignore[no-untyped-call]
            return
        given = list(messages)
        try:
            if given:
                self._release(given)
        finally:
            self.slots.give_back(len(given))

    def _release(self, messages: list[MessageProxy]) -> None:
        assert self.broker.executor is not None
        released = [
            Released(
                m.options["redis_message_id"],
                m.message_id if claim_of(m) else "",
                int(m.options.get(GENERATION_OPTION) or 0),
            )
            for m in messages
        ]
        self.broker.executor.run(
            transitions.release(self.broker.broker_id, self.queue_name, released)
        )

    def close(self) -> None:
        if self.claims:
            cached = [self._from_cache() for _ in range(len(self.message_cache))]
            try:
                if cached:
                    self._release(cached)
            except (StoreUnavailable, redis.RedisError):
                # Redis is gone: the supervisor (or, without one, orphan recovery once this
                # process's presence expires) releases them.
                pass
            finally:
                self.slots.give_back(len(cached))
        else:
            plain = [dramatiq.Message.decode(data) for data in self.message_cache if data]
            self.message_cache = []
            try:
                if plain:
                    self.requeue(plain)
            except redis.RedisError:
                # Redis is gone: they stay in this worker's acks, which Dramatiq's maintenance
                # requeues once this worker's heartbeat is stale.
                pass
        super().close()


class JobcoreRedisBroker(RedisBroker):
    """Dramatiq's Redis broker with ``JobcoreRedisConsumer``. A worker process names it
    after its presence id (``use_worker_id``), so Dramatiq's heartbeat and fetched-message
    sets are the process's own, and gives it the store's executor (``attach``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.executor: Executor | None = None
        #: False once the worker process stops: its consumers claim nothing more.
        self.claiming = True
        self._settings: Settings | None = None
        self._slots: ClaimSlots | None = None
        self._wake_client: redis.Redis | None = None
        self._lock = threading.Lock()

    @property
    def consumer_class(self) -> type[JobcoreRedisConsumer]:
        return JobcoreRedisConsumer

    def attach(self, executor: Executor, settings: Settings) -> None:
        """Give the consumers the store's executor: from now on they claim jobs."""
        self.executor = executor
        self._settings = settings

    def use_worker_id(self, worker_id: str) -> None:
        self.broker_id = worker_id

    def claim_slots(self, threads: int) -> ClaimSlots:
        with self._lock:
            if self._slots is None:
                self._slots = ClaimSlots(threads)
            return self._slots

    def wake_client(self) -> redis.Redis:
        """A connection of its own for blocking waits (its timeout outlasts ``WAKE_WAIT``)."""
        with self._lock:
            if self._wake_client is None:
                assert self._settings is not None
                timeout = self._settings.redis_timeout + WAKE_WAIT
                self._wake_client = connect(self._settings, timeout=timeout)
            return self._wake_client


def build_broker(settings: Settings) -> JobcoreRedisBroker:
    """The Redis broker, set as Dramatiq's global broker, with no middleware yet: each
    process adds its own list in order (``execution.middleware``)."""
    # The same short timeouts as every Jobcore call: an enqueue against a hung Redis
    # fails within one timeout instead of redis-py's default retries.
    client = connect(settings, decode_responses=False)
    broker = JobcoreRedisBroker(
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
    record (``ready``), and the message itself for the broker's middleware (``None`` when
    no middleware listens for enqueues, so none was built)."""

    ready: ReadyMessage
    message: dramatiq.Message[Any] | None


def _job_options(generation: int, traceparent: str, redis_message_id: str) -> dict[str, Any]:
    options: dict[str, Any] = {GENERATION_OPTION: generation}
    if traceparent:
        options[TRACEPARENT_OPTION] = traceparent
    if redis_message_id:
        options["redis_message_id"] = redis_message_id
    return options


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
    options = _job_options(generation, traceparent, redis_message_id)
    return _message(job_id, actor_name, queue, options)


def _message(
    job_id: str, actor_name: str, queue: str, options: dict[str, Any]
) -> dramatiq.Message[Any]:
    return dramatiq.Message(
        queue_name=queue,
        actor_name=actor_name,
        args=(),
        kwargs={},
        options=options,
        message_id=job_id,
    )


def encode_message(
    job_id: str,
    actor_name: str,
    queue: str,
    options: dict[str, Any],
    timestamp_ms: int | None = None,
) -> bytes:
    """A job's message encoded as Dramatiq's JSON encoder encodes it, byte for byte, without
    building it (``Message.asdict`` walks the dataclass's fields; preparing the message was
    5.5 % of the ``POST /jobs`` profile with it, 4.8 % without, ``BENCH_PROFILE=1
    BENCH_PARTS=http``). A message holds no floats (``json_text.compact_ascii``)."""
    return json_text.compact_ascii(
        {
            "queue_name": queue,
            "actor_name": actor_name,
            "args": [],
            "kwargs": {},
            "options": options,
            "message_id": job_id,
            "message_timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
        }
    )


def random_uuid_text() -> str:
    """``str(uuid4())``, made from the same 16 random bytes without building a ``UUID`` (and
    its argument checks): the Redis broker's id of a message Jobcore writes."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _listens_for_enqueues(middleware: Any) -> bool:
    kind = type(middleware)
    return (
        kind.before_enqueue is not Middleware.before_enqueue
        or kind.after_enqueue is not Middleware.after_enqueue
    )


class MessageSender:
    """Prepares a new job's message for the create script to write with its record: ids are
    job ids, payloads stay in the record. (Every later message of a job is written by the
    script that moves its record: ``lua/_records.lua``'s ``send_message``.)"""

    def __init__(self, broker: RedisBroker) -> None:
        self.broker = broker
        self._ready_keys: dict[str, dict[str, str]] = {}
        #: The middleware and encoder last looked at, and whether none listens for enqueues.
        self._quiet: tuple[tuple[Any, ...], Any, bool] = ((), None, False)

    def prepare(
        self, job_id: str, actor_name: str, queue: str, generation: int, *, traceparent: str = ""
    ) -> PreparedMessage:
        """The message of a new job, encoded as Dramatiq's Redis broker would enqueue it.

        The message object is built only for middleware that listens for enqueues (the
        API's broker has none) or an encoder other than Dramatiq's JSON one."""
        redis_message_id = random_uuid_text()
        options = _job_options(generation, traceparent, redis_message_id)
        ready_keys = self._ready_keys.get(queue)
        if ready_keys is None:
            ready_keys = self._ready_keys[queue] = {
                "queue_key": keys.ready_queue(queue, self.broker.namespace),
                "messages_key": keys.messages(queue, self.broker.namespace),
                "wake_key": keys.wake(queue, self.broker.namespace),
            }
        if self._plain():
            body = encode_message(job_id, actor_name, queue, options)
            ready = ReadyMessage(message_id=redis_message_id, body=body, **ready_keys)
            return PreparedMessage(ready, None)
        message = _message(job_id, actor_name, queue, options)
        self.broker.emit_before("enqueue", message, None)
        ready = ReadyMessage(message_id=redis_message_id, body=message.encode(), **ready_keys)
        return PreparedMessage(ready, message)

    def _plain(self) -> bool:
        """Dramatiq's JSON encoder, and no middleware listening for enqueues (looked at again
        only when the middleware or the encoder changed)."""
        middleware, encoder = tuple(self.broker.middleware), dramatiq.get_encoder()
        seen, seen_encoder, quiet = self._quiet
        if middleware != seen or encoder is not seen_encoder:
            quiet = type(encoder) is JSONEncoder and not any(
                _listens_for_enqueues(m) for m in middleware
            )
            self._quiet = (middleware, encoder, quiet)
        return quiet

    def prepared_sent(self, prepared: PreparedMessage) -> None:
        """Tell the broker's middleware a prepared message was enqueued with its record."""
        if prepared.message is not None:
            self.broker.emit_after("enqueue", prepared.message, None)
