"""One pure wrapper per lifecycle script: it names the script's slots, and turns the reply
into a named value. Each is an operation (``calls.py``) that an executor runs."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from jobcore.errors import InvalidTransition, JobNotFound, NotReplicated, SubmissionNotConfirmed
from jobcore.model.backoff import Backoff
from jobcore.model.records import result_json
from jobcore.model.states import CANCELLABLE, RETRYABLE, AttemptOutcome, FailureKind
from jobcore.store import keys, scripts
from jobcore.store.calls import Operation, replicated

#: Reason recorded when a job's deliveries pass its cap; ``%d`` is the delivery count.
DELIVERY_CAP_REASON = (
    "delivery cap reached: the job was started %d times without finishing "
    "(it keeps killing its worker)"
)


@dataclass(frozen=True)
class NewJob:
    """Everything the create script writes for an accepted job; its fields are the script's
    arguments of the same names (``lua/create.lua``)."""

    id: str
    job_type: str
    queue: str
    payload_json: str
    state: str
    due_at: int
    run_at: int | None
    max_attempts: int
    max_deliveries: int
    backoff_json: str
    trace_id: str
    traceparent: str
    created_at: int


@dataclass(frozen=True)
class ReadyMessage:
    """A ready-queue message for the create script to write with the record, in Dramatiq's
    layout: the list of ready ids, the hash of bodies, the broker's id and the body."""

    queue_key: str
    messages_key: str
    message_id: str
    body: bytes
    #: The queue's wake list (its idle consumers wait on it).
    wake_key: str = ""


@dataclass(frozen=True)
class IdempotencyKey:
    """A submission's idempotency key as the create script stores it: hashed, in its
    namespace, with the request's fingerprint, for the window."""

    namespace: str
    digest: str
    fingerprint: str
    window_ms: int


@dataclass(frozen=True)
class CreateOutcome:
    outcome: str  # "created" | "duplicate" | "conflict"
    job_id: str
    state: str


@dataclass(frozen=True)
class Skipped:
    """A dead letter a bulk retry left alone, and why it failed."""

    failure: FailureKind


@dataclass(frozen=True)
class Finished:
    """What finishing an attempt did: ``recorded`` is false when the record was no longer
    this attempt's (``lost``). A retry or requeue needs nothing more: the script sent its
    message, or left it in the due set for the promoter."""

    recorded: bool
    #: The record's state when the end was not recorded ('missing' when it is gone).
    state: str = ""


@dataclass(frozen=True)
class Promoted:
    """What one promoter pass did: how many due jobs it sent, and when the next one is due
    (epoch ms; ``None`` when the due set is empty)."""

    count: int
    next_due: int | None


@dataclass(frozen=True)
class Claim:
    """What a worker process learns of a job it claimed at fetch (``lua/claim.lua``)."""

    attempt: int
    max_attempts: int
    payload: Any
    backoff: Backoff
    job_type: str
    #: The stored payload could not be decoded: the job cannot run (it fails permanently).
    damaged: bool = False


@dataclass(frozen=True)
class Fetched:
    """One message a claim fetched: its encoded body, and the claim (``None`` for a message
    that is not Jobcore's)."""

    body: str | bytes
    claim: Claim | None


@dataclass(frozen=True)
class Claimed:
    """What one claim fetched: the messages to run, and the jobs whose messages it acked
    without running them, with why (missing, terminal, stale, busy, dead)."""

    fetched: list[Fetched]
    skipped: list[tuple[str, str]]


@dataclass(frozen=True)
class MessageAck:
    """The Dramatiq ack a transition performs in the same script: the worker process's
    fetched-but-unacked set for the queue, the queue's bodies, and the message's id."""

    acks_key: str
    messages_key: str
    message_id: str


@dataclass(frozen=True)
class Released:
    """A claimed message a stopping worker process gives back: its broker id, its job's id
    ('' for a message that is not Jobcore's) and generation."""

    message_id: str
    job_id: str
    generation: int


#: Entries per claimed message in ``lua/claim.lua``'s reply.
_CLAIM_WIDTH = 6


def claim(
    queue: str,
    worker_id: str,
    count: int,
    now: int,
    *,
    heartbeat_timeout_ms: int,
    maintenance: bool,
    dead_message_ttl_ms: int,
    token: str = "",
    received: str = "",
) -> Operation[Claimed]:
    """Fetch up to ``count`` messages of ``queue`` for ``worker_id`` and claim their jobs
    (with Dramatiq's heartbeat and, when ``maintenance``, its maintenance).

    The claim is remembered under ``token`` while it holds messages. After a claim whose
    reply never came back (the call timed out, yet Redis may have run it), ``received`` is
    the token of the last claim whose reply did (or one no claim has, if none did): a
    remembered claim of any other token was never received, and its messages go back to
    the queue first. '' settles nothing."""
    reply = yield scripts.CLAIM.call(
        keys={
            "ready_queue": keys.ready_queue(queue),
            "messages": keys.messages(queue),
            "acks": keys.acks(worker_id, queue),
            "heartbeats": keys.BROKER_HEARTBEATS,
            "dead_queue": keys.dead_queue(queue),
            "dead_messages": keys.dead_messages(queue),
            "due": keys.DUE,
            "last_claim": keys.last_claim(worker_id, queue),
        },
        args={
            "now": now,
            "worker_id": worker_id,
            "queue": queue,
            "count": count,
            "token": token,
            "received": received,
            "heartbeat_timeout_ms": heartbeat_timeout_ms,
            "maintenance": "1" if maintenance else "0",
            "dead_message_ttl_ms": dead_message_ttl_ms,
            "delivery_cap_reason": DELIVERY_CAP_REASON,
        },
    )
    claimed, skipped = reply
    fetched = []
    for i in range(0, len(claimed), _CLAIM_WIDTH):
        body, attempt, max_attempts, payload_text, backoff_text, job_type = claimed[
            i : i + _CLAIM_WIDTH
        ]
        if not job_type:
            fetched.append(Fetched(body, None))
            continue
        payload = _object(payload_text)
        found = Claim(
            attempt=_whole(attempt, 1),
            max_attempts=_whole(max_attempts, 1),
            payload=payload,
            backoff=Backoff.from_stored(backoff_text or "{}"),
            job_type=job_type,
            damaged=payload is None,
        )
        fetched.append(Fetched(body, found))
    return Claimed(fetched, [(skipped[i], skipped[i + 1]) for i in range(0, len(skipped), 2)])


def begin(worker_id: str, attempts: Sequence[tuple[str, int, int, int]]) -> Operation[list[str]]:
    """Record attempts that began (job id, generation, attempt, started at) as ``active``;
    the ids of the jobs ``worker_id`` no longer holds (cancelled meanwhile)."""
    gone = yield scripts.BEGIN.call(
        keys={},
        args={"worker_id": worker_id, "attempts_json": json.dumps([list(a) for a in attempts])},
        rest_of_keys=tuple(keys.job(a[0]) for a in attempts),
    )
    return list(gone)


def release(worker_id: str, queue: str, messages: Sequence[Released]) -> Operation[int]:
    """Give claimed messages back to the front of their queue, their jobs ``waiting``."""
    released = yield scripts.RELEASE.call(
        keys={
            "ready_queue": keys.ready_queue(queue),
            "messages": keys.messages(queue),
            "acks": keys.acks(worker_id, queue),
        },
        args={
            "worker_id": worker_id,
            "queue": queue,
            "messages_json": json.dumps([[m.message_id, m.job_id, m.generation] for m in messages]),
        },
    )
    return int(released)


def recover_lost(owner: str, now: int, limit: int) -> Operation[list[str]]:
    """Jobs of worker processes that are gone back to ``waiting`` with their messages:
    those of ``owner`` (a process its supervisor saw die; its presence goes too), or with
    ``owner`` '' those of every owner whose presence expired; the ids recovered."""
    recovered = yield scripts.RECOVER_LOST.call(
        keys={
            "types": keys.TYPES,
            "due": keys.DUE,
            "heartbeats": keys.BROKER_HEARTBEATS,
            "workers": keys.WORKERS,
        },
        args={
            "owner": owner,
            "now": now,
            "delivery_cap_reason": DELIVERY_CAP_REASON,
            "limit": limit,
        },
    )
    return list(recovered)


def create(
    job: NewJob, idempotency: IdempotencyKey | None = None, message: ReadyMessage | None = None
) -> Operation[CreateOutcome]:
    """Record an accepted job (and, with ``message``, enqueue it) in one script, confirmed
    by the replicas (``SubmissionNotConfirmed`` names the job that may exist otherwise)."""
    call = scripts.CREATE.call(
        keys={
            "job": keys.job(job.id),
            "sequence": keys.SEQUENCE,
            "types": keys.TYPES,
            "due": keys.DUE,
            "idempotency": (
                keys.idempotency(idempotency.namespace, idempotency.digest) if idempotency else ""
            ),
            "ready_queue": message.queue_key if message else "",
            "messages": message.messages_key if message else "",
            "wake_list": message.wake_key if message else "",
        },
        args={
            # Its fields are flat: ``vars`` gives them without ``asdict``'s deep copy, in
            # the script's order (``run_at`` keeps its place when replaced).
            **vars(job),
            "run_at": "" if job.run_at is None else job.run_at,
            "fingerprint": idempotency.fingerprint if idempotency else "",
            "window_ms": idempotency.window_ms if idempotency else 0,
            "message_id": message.message_id if message else "",
            "message_body": message.body if message else "",
        },
    )
    try:
        reply = yield replicated(call)
    except NotReplicated as unconfirmed:
        written = unconfirmed.reply
        raise SubmissionNotConfirmed(written[1] if written else job.id, unconfirmed) from None
    return CreateOutcome(reply[0], reply[1], reply[2] if len(reply) > 2 else "")


def finish(
    job_id: str,
    generation: int,
    worker_id: str,
    now: int,
    outcome: AttemptOutcome,
    *,
    result: Any = None,
    result_text: str | None = None,
    error: str = "",
    next_attempt_at: int | None = None,
    failed_reason: str = "",
    link: str = "",
    attempt: int = 0,
    started_at: int = 0,
    ack: MessageAck | None = None,
) -> Operation[Finished]:
    """Record how an attempt ended (see ``lua/finish.lua``) and, with ``ack``, ack its
    message in the same script, confirmed by the replicas. An unconfirmed end raises
    ``NotReplicated`` whose ``reply`` is the ``Finished`` it wrote. ``link`` is the
    attempt's traceparent: the next attempt's span links to it. ``attempt`` and
    ``started_at`` record the attempt as begun if nothing did yet. ``result_text`` is
    ``result`` already encoded (``model.records.result_json``)."""
    call = replicated(
        scripts.FINISH.call(
            keys={
                "job": keys.job(job_id),
                "due": keys.DUE,
                "acks": ack.acks_key if ack else "",
                "messages": ack.messages_key if ack else "",
            },
            args={
                "job_id": job_id,
                "generation": generation,
                "worker_id": worker_id,
                "now": now,
                "outcome": outcome,
                "result_json": _result_text(outcome, result, result_text),
                "attempt_error": error,
                "next_attempt_at": "" if next_attempt_at is None else next_attempt_at,
                "failed_reason": failed_reason,
                "link": link,
                "attempt": attempt,
                "started_at": started_at or now,
                "message_id": ack.message_id if ack else "",
            },
        )
    )
    try:
        reply = yield call
    except NotReplicated as unconfirmed:
        unconfirmed.reply = _finished(job_id, unconfirmed.reply)
        raise
    return _finished(job_id, reply)


def _result_text(outcome: AttemptOutcome, result: Any, result_text: str | None) -> str:
    if outcome is not AttemptOutcome.COMPLETED:
        return ""
    return result_text if result_text is not None else result_json(result)


def _finished(job_id: str, reply: list[str]) -> Finished:
    if reply[0] == "lost":
        return Finished(False, str(reply[1]) if len(reply) > 1 else "")
    return Finished(True)


def set_progress(job_id: str, worker_id: str, progress: int) -> Operation[bool]:
    reply = yield scripts.PROGRESS.call(
        keys={"job": keys.job(job_id)}, args={"worker_id": worker_id, "progress": progress}
    )
    return bool(reply)


def cancel(job_id: str, now: int) -> Operation[None]:
    """Cancel a pending job, confirmed by the replicas; ``JobNotFound`` or
    ``InvalidTransition`` otherwise."""
    reply = yield replicated(
        scripts.CANCEL.call(
            keys={"job": keys.job(job_id), "due": keys.DUE}, args={"job_id": job_id, "now": now}
        )
    )
    _raise_unless(job_id, reply, "cancel", CANCELLABLE)


def retry(
    job_id: str,
    now: int,
    *,
    reset_effects: bool = False,
    leave: Collection[FailureKind] = (),
    link: str = "",
) -> Operation[Skipped | None]:
    """Put a failed or cancelled job back to waiting with its message sent. A dead letter
    whose failure kind is in ``leave`` is left alone (``Skipped``). ``link`` is the asking
    request's traceparent: the attempt's span links to it."""
    reply = yield scripts.RETRY.call(
        keys={"job": keys.job(job_id), "effects": keys.job_effects(job_id), "due": keys.DUE},
        args={
            "job_id": job_id,
            "now": now,
            "reset_effects": "1" if reset_effects else "0",
            "leave_failures": ",".join(leave),
            "link": link,
        },
    )
    _raise_unless(job_id, reply, "retry", RETRYABLE)
    if reply[0] == "skipped":
        return Skipped(FailureKind(reply[1]))
    return None


def promote(now: int, limit: int) -> Operation[Promoted]:
    """Send the messages of up to ``limit`` due jobs (``lua/promote.lua``)."""
    reply = yield scripts.PROMOTE.call(keys={"due": keys.DUE}, args={"now": now, "limit": limit})
    return Promoted(int(reply[0]), _whole(reply[1], 0) or None)


def purge(job_id: str, states: Collection[str]) -> Operation[bool]:
    """Delete a job in one of ``states`` with its history, effects, index entries and key."""
    reply = yield scripts.PURGE.call(
        keys={"job": keys.job(job_id), "effects": keys.job_effects(job_id), "due": keys.DUE},
        args={"job_id": job_id, "states": ",".join(states)},
    )
    return bool(reply)


def _raise_unless(job_id: str, reply: list[str], operation: str, allowed: tuple[str, ...]) -> None:
    if reply[0] == "missing":
        raise JobNotFound(job_id)
    if reply[0] == "invalid":
        raise InvalidTransition(job_id, reply[1], operation, allowed)


def _object(text: str) -> dict[str, Any] | None:
    """A stored JSON object, or ``None`` when the record holds something else."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _whole(text: str, default: int) -> int:
    try:
        return int(float(text))
    except (TypeError, ValueError, OverflowError):
        return default
