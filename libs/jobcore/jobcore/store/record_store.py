"""The record store: job records, their indexes and history in Redis, one script per transition."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis

from jobcore.broker import PreparedMessage
from jobcore.clock import format_ms, now_ms
from jobcore.errors import InvalidTransition, JobNotFound
from jobcore.model.records import JobRecord, stored_json
from jobcore.model.states import ALL_STATES, CANCELLABLE, RETRYABLE, FailureKind
from jobcore.store import keys
from jobcore.store import scripts as store_scripts
from jobcore.store.connection import store_errors

#: Reason recorded when a job's deliveries pass its cap; ``%d`` is the delivery count.
DELIVERY_CAP_REASON = (
    "delivery cap reached: the job was started %d times without finishing "
    "(it keeps killing its worker)"
)


@dataclass(frozen=True)
class NewJob:
    """Everything the create script writes for an accepted job."""

    id: str
    type: str
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
class CreateOutcome:
    outcome: str  # "created" | "duplicate" | "conflict"
    job_id: str
    state: str


@dataclass(frozen=True)
class StartOutcome:
    """What the worker learns when it tries to start a message."""

    outcome: str  # started | missing | terminal | stale | busy | dead
    attempt: int = 0
    max_attempts: int = 0
    payload: Any = None
    backoff: dict[str, Any] | None = None
    traceparent: str = ""
    detail: str = ""
    #: The stored payload could not be decoded: the job cannot run (it fails permanently).
    damaged: bool = False


@dataclass(frozen=True)
class Reenqueue:
    """A job that needs a new message: its id, the generation to carry, where it goes."""

    job_id: str
    generation: int
    queue: str
    type: str


@dataclass(frozen=True)
class Skipped:
    """A dead letter a bulk retry left alone, and why it failed."""

    failure: FailureKind


@dataclass(frozen=True)
class Page:
    items: list[JobRecord]
    next_cursor: str | None


class RecordStore:
    """Job records in Redis. Every method is one round trip unless it says otherwise."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._scripts = {
            name: client.register_script(store_scripts.PRELUDE + getattr(store_scripts, name))
            for name in (
                "CREATE",
                "CONFIRM_READY",
                "START",
                "FINISH",
                "PROGRESS",
                "CANCEL",
                "RETRY",
                "RECOVER_DUE",
                "RECOVER_ORPHAN",
                "PURGE",
                "LIST",
                "STATS",
            )
        }

    def _run(self, name: str, args: Sequence[Any], script_keys: Sequence[str] = ()) -> Any:
        with store_errors():
            return self._scripts[name](keys=list(script_keys), args=list(args))

    # --- transitions -------------------------------------------------------------

    def create(
        self,
        job: NewJob,
        idempotency_key: str = "",
        fingerprint: str = "",
        window_ms: int = 0,
        message: PreparedMessage | None = None,
    ) -> CreateOutcome:
        """Record an accepted job (and, with ``message``, enqueue it) in one script."""
        message_keys = [message.queue_key, message.messages_key] if message else ["", ""]
        result = self._run(
            "CREATE",
            [
                job.id,
                job.type,
                job.queue,
                job.payload_json,
                job.created_at,
                job.state,
                job.due_at,
                job.max_attempts,
                job.max_deliveries,
                job.backoff_json,
                job.trace_id,
                "" if job.run_at is None else job.run_at,
                fingerprint,
                window_ms,
                job.traceparent,
                message.redis_message_id if message else "",
                message.body if message else "",
            ],
            [idempotency_key, *message_keys],
        )
        return CreateOutcome(result[0], result[1], result[2] if len(result) > 2 else "")

    def confirm_ready(self, job_id: str, generation: int) -> None:
        """The job's message is in a ready queue: the sweeper need not watch it."""
        self._run("CONFIRM_READY", [job_id, generation])

    def start(self, job_id: str, generation: int, worker_id: str) -> StartOutcome:
        result = self._run("START", [job_id, generation, worker_id, now_ms(), DELIVERY_CAP_REASON])
        if result[0] != "started":
            return StartOutcome(result[0], detail=result[1] if len(result) > 1 else "")
        payload, backoff = _decoded_object(result[3]), _decoded_object(result[4] or "{}")
        return StartOutcome(
            "started",
            attempt=_whole(result[1], 1),
            max_attempts=_whole(result[2], 1),
            payload=payload,
            backoff=backoff or {},
            traceparent=result[5],
            detail=result[6],
            damaged=payload is None,
        )

    def complete(self, job_id: str, generation: int, worker_id: str, result: Any) -> bool:
        out = self._run(
            "FINISH", [job_id, generation, worker_id, now_ms(), "completed", stored_json(result)]
        )
        return bool(out[0] == "completed")

    def schedule_retry(
        self, job_id: str, generation: int, worker_id: str, error: str, next_attempt_at: int
    ) -> Reenqueue | None:
        out = self._run(
            "FINISH", [job_id, generation, worker_id, now_ms(), "retry", error, next_attempt_at]
        )
        return _reenqueue(job_id, out)

    def fail(
        self,
        job_id: str,
        generation: int,
        worker_id: str,
        error: str,
        reason: str,
        failure: FailureKind = FailureKind.EXHAUSTED,
    ) -> bool:
        out = self._run(
            "FINISH",
            [
                job_id,
                generation,
                worker_id,
                now_ms(),
                "failed",
                error,
                reason,
                failure,
            ],
        )
        return bool(out[0] == "failed")

    def requeue(self, job_id: str, generation: int, worker_id: str) -> Reenqueue | None:
        out = self._run("FINISH", [job_id, generation, worker_id, now_ms(), "requeue"])
        return _reenqueue(job_id, out)

    def set_progress(self, job_id: str, worker_id: str, progress: int) -> bool:
        return bool(self._run("PROGRESS", [job_id, worker_id, progress]))

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a pending job; two round trips (the transition, then the record)."""
        out = self._run("CANCEL", [job_id, now_ms()])
        self._raise_unless(job_id, out, "cancel", CANCELLABLE)
        return self.get(job_id)

    def retry(
        self,
        job_id: str,
        reset_effects: bool = False,
        *,
        leave: Collection[FailureKind] = (),
    ) -> Reenqueue | Skipped:
        """Put a failed or cancelled job back to waiting; the caller enqueues it.

        A dead letter whose failure kind is in ``leave`` is left alone (``Skipped``), as
        bulk retries leave those needing a human check or failed permanently.
        """
        out = self._run("RETRY", [job_id, now_ms(), "1" if reset_effects else "0", ",".join(leave)])
        self._raise_unless(job_id, out, "retry", RETRYABLE)
        if out[0] == "skipped":
            return Skipped(FailureKind(out[1]))
        again = _reenqueue(job_id, out)
        assert again is not None
        return again

    def purge(self, job_id: str, states: tuple[str, ...]) -> bool:
        """Delete a job in one of ``states`` with its history, effects and index entries."""
        return bool(self._run("PURGE", [job_id, *states]))

    def ids_in(self, state: str, job_type: str | None, limit: int) -> list[str]:
        """Oldest-first ids of jobs in ``state`` (optionally of one type), at most ``limit``."""
        return [job_id for job_id, _ in self._index_page(state, job_type, "-inf", limit, "asc")]

    def _index_page(
        self, state: str | None, job_type: str | None, bound: str, count: int, order: str
    ) -> list[tuple[str, int]]:
        """Ids and sequence numbers from the indexes matching the filters, past ``bound``."""
        flat = self._run("LIST", [state or "", job_type or "", bound, count, order])
        return [(flat[i], int(flat[i + 1])) for i in range(0, len(flat), 2)]

    @staticmethod
    def _raise_unless(
        job_id: str, out: list[str], operation: str, allowed: tuple[str, ...]
    ) -> None:
        if out[0] == "missing":
            raise JobNotFound(job_id)
        if out[0] == "invalid":
            raise InvalidTransition(job_id, out[1], operation, allowed)

    # --- recovery ------------------------------------------------------------------

    def overdue(self, older_than_ms: int, limit: int) -> list[str]:
        """Ids of pending jobs whose message should have been ready before ``older_than_ms``."""
        with store_errors():
            ids = cast(
                list[str], self.client.zrangebyscore(keys.DUE, "-inf", older_than_ms, 0, limit)
            )
        return ids

    def recover_due(self, job_id: str, margin_ms: int) -> Reenqueue | None:
        return _reenqueue(job_id, self._run("RECOVER_DUE", [job_id, now_ms(), margin_ms]))

    def active_ids(self, limit: int) -> list[str]:
        return self.ids_in("active", None, limit)

    def recover_orphan(self, job_id: str) -> Reenqueue | None:
        return _reenqueue(job_id, self._run("RECOVER_ORPHAN", [job_id, now_ms()]))

    # --- reads ---------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord:
        with store_errors():
            fields = cast(dict[str, str], self.client.hgetall(keys.job(job_id)))
        if not fields:
            raise JobNotFound(job_id)
        return JobRecord.from_hash(job_id, fields)

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """The job's history, oldest first, times as RFC 3339."""
        with store_errors():
            found, history = cast(
                list[str | None], self.client.hmget(keys.job(job_id), "state", "history")
            )
        if found is None:
            raise JobNotFound(job_id)
        return [_shown_event(line) for line in (history or "").splitlines()]

    def list(self, state: str | None, job_type: str | None, limit: int, cursor: int | None) -> Page:
        """Newest first from the indexes matching the filters; two round trips."""
        upper = f"({cursor}" if cursor is not None else "+inf"
        pairs = self._index_page(state, job_type, upper, limit + 1, "desc")
        page, more = pairs[:limit], len(pairs) > limit
        with store_errors():
            pipe = self.client.pipeline(transaction=False)
            for job_id, _ in page:
                pipe.hgetall(keys.job(job_id))
            hashes = pipe.execute() if page else []
        items = [JobRecord.from_hash(j, h) for (j, _), h in zip(page, hashes, strict=True) if h]
        next_cursor = str(page[-1][1]) if more and page else None
        return Page(items, next_cursor)

    def stats(self, job_types: Sequence[str], queue_keys: Mapping[str, str]) -> dict[str, Any]:
        """Counts per state and type, queue depths, delayed and dead letters; one round trip.

        ``queue_keys`` maps each queue to the broker's ready-queue list; its length is the depth.
        Every type in ``job_types`` is counted, with zeros if none was ever accepted.
        """
        flat = self._run("STATS", [], list(queue_keys.values()))
        depths = dict(zip(queue_keys, flat[: len(queue_keys)], strict=True))  # by queue name
        by_state = dict.fromkeys(ALL_STATES, 0)
        by_type = dict.fromkeys(job_types, 0)
        rest = flat[len(queue_keys) :]
        width = 1 + len(ALL_STATES)
        for i in range(0, len(rest), width):
            counts = dict(zip(ALL_STATES, rest[i + 1 : i + width], strict=True))
            by_type[rest[i]] = sum(counts.values())
            for state, count in counts.items():
                by_state[state] += count
        return {
            "states": by_state,
            "types": by_type,
            "queues": depths,
            "delayed": by_state["delayed"],
            "retrying": by_state["retrying"],
            "deadLetters": by_state["failed"],
            "total": sum(by_state.values()),
        }

    def ping(self) -> bool:
        with store_errors():
            return bool(self.client.ping())


def _decoded_object(text: str) -> dict[str, Any] | None:
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


#: Event fields holding epoch-ms times, shown as RFC 3339.
_EVENT_TIMES = ("at", "runAt", "nextAttemptAt")


def _shown_event(line: str) -> dict[str, Any]:
    """One history line as ``GET /jobs/{id}/events`` shows it; a damaged line is shown as an
    ``undecodable`` event instead of failing the whole history."""
    try:
        event = json.loads(line)
        if not isinstance(event, dict):
            raise ValueError("not an object")
        for name in _EVENT_TIMES:
            if name in event:
                event[name] = format_ms(int(event[name]))
    except (ValueError, TypeError, OverflowError, OSError):
        return {"at": None, "event": "undecodable", "raw": line[:200]}
    return dict(event)


def _reenqueue(job_id: str, out: list[str]) -> Reenqueue | None:
    if out[0] not in ("retrying", "requeued", "waiting", "recovered"):
        return None
    return Reenqueue(job_id, int(out[1]), out[2], out[3])
