"""``Jobs``: the operations every producer and reader calls — submit, read, cancel, retry."""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any

from jobcore.broker import MessageSender
from jobcore.clock import now_ms
from jobcore.errors import (
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    StoreUnreachable,
    SubmissionMayExist,
)
from jobcore.intake.idempotency import CLIENT_NAMESPACE, digest, fingerprint
from jobcore.intake.listing import DEFAULT_PAGE_SIZE
from jobcore.intake.submission import Submission
from jobcore.model.backoff import RetryPolicy
from jobcore.model.records import JobRecord, payload_json
from jobcore.model.specs import JobTypes
from jobcore.model.states import ALL_STATES, FailureKind, State
from jobcore.settings import Settings
from jobcore.store import queries, transitions
from jobcore.store.calls import Operation
from jobcore.store.record_store import (
    IdempotencyKey,
    NewJob,
    Page,
    RecordStore,
    Skipped,
)
from jobcore.telemetry.metrics import JOBS_SUBMITTED, series
from jobcore.telemetry.producer_span import send_span
from jobcore.telemetry.tracing import current_traceparent

#: Most jobs one bulk dead-letter operation touches; call again for the rest.
BULK_LIMIT = 1000


def new_job_id() -> str:
    """Opaque, URL-safe, unique, unrelated to any idempotency key; never starts with ``-``
    or ``_`` (so command lines do not read it as an option)."""
    while True:
        job_id = secrets.token_urlsafe(12)
        if job_id[0].isalnum():
            return job_id


@dataclass(frozen=True)
class BulkRetry:
    """What a bulk retry of dead letters did: how many it retried, and how many it left
    alone by failure kind (``human-check``, ``permanent``)."""

    retried: int
    skipped: dict[str, int]

    def to_api(self) -> dict[str, Any]:
        return {
            "retried": self.retried,
            "skipped": sum(self.skipped.values()),
            "skippedByFailure": self.skipped,
        }


@dataclass(frozen=True)
class Accepted:
    job_id: str
    state: str
    duplicate: bool

    def to_api(self) -> dict[str, Any]:
        """The answer to a submission (``POST /jobs``, ``jobcore enqueue``)."""
        shown: dict[str, Any] = {"status": "accepted", "jobId": self.job_id, "state": self.state}
        if self.duplicate:
            shown["duplicate"] = True
        return shown


#: The JSON Schema of ``Accepted.to_api``.
ACCEPTED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "jobId", "state"],
    "properties": {
        "status": {"const": "accepted"},
        "jobId": {"type": "string", "description": "opaque, URL-safe"},
        "state": {"type": "string", "enum": list(ALL_STATES)},
        "duplicate": {"const": True, "description": "present on idempotent replays"},
    },
}
#: The JSON Schema of ``BulkRetry.to_api`` (``POST /jobs/dead/retry``).
BULK_RETRY_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["retried", "skipped", "skippedByFailure"],
    "properties": {
        "retried": {"type": "integer", "minimum": 0},
        "skipped": {"type": "integer", "minimum": 0},
        "skippedByFailure": {
            "type": "object",
            "additionalProperties": {"type": "integer", "minimum": 0},
            "description": "jobs left alone, by why they failed: human-check (an unfinished "
            "effect; retry with effects=reset after checking), permanent (retry with "
            "includePermanent)",
        },
    },
}
#: The JSON Schema of ``purged_view`` (``DELETE /jobs/dead``).
PURGED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["purged"],
    "properties": {"purged": {"type": "integer", "minimum": 0}},
}


def purged_view(count: int) -> dict[str, Any]:
    return {"purged": count}


class JobOperations:
    """What producers and readers do, each as a store operation (``store.calls``): ``Jobs``
    runs them on the synchronous executor, ``AsyncJobs`` (``jobcore.async_jobs``) on the
    asynchronous one, so both serve the same rules."""

    def __init__(self, settings: Settings, sender: MessageSender, job_types: JobTypes) -> None:
        self.settings = settings
        self.sender = sender
        self.job_types = job_types

    def record_and_send(
        self,
        submission: Submission,
        *,
        job_id: str,
        namespace: str,
        trace_id: str,
        traceparent: str,
    ) -> Operation[Accepted]:
        """Record the job and enqueue its message in one round trip; replays of an
        idempotency key return the job.

        The create script writes the record and, for an immediate job, its ready-queue
        message together; a delayed job waits in the due set, whose promoter sends its
        message at its time.
        """
        spec = submission.spec
        now = now_ms()
        policy = RetryPolicy(
            submission.max_attempts or spec.retry.max_attempts,
            spec.retry.backoff.overridden_by(submission.backoff),
        )
        run_at = submission.run_at_ms
        if submission.delay_ms:
            run_at = now + submission.delay_ms
        delay_ms = max(run_at - now, 0) if run_at is not None else 0
        state = State.DELAYED if delay_ms > 0 else State.WAITING

        job = NewJob(
            id=job_id,
            job_type=spec.name,
            queue=spec.queue,
            # As submitted, keys in their order (canonical order is for fingerprints only).
            payload_json=payload_json(submission.payload, floats=submission.holds_floats),
            state=state,
            due_at=run_at if delay_ms > 0 and run_at is not None else now,
            run_at=run_at if delay_ms > 0 else None,
            max_attempts=policy.max_attempts,
            max_deliveries=policy.max_deliveries,
            backoff_json=policy.backoff.stored,
            trace_id=trace_id or secrets.token_hex(16),
            traceparent=traceparent,
            created_at=now,
        )
        idem_key = None
        if submission.idempotency_key is not None:
            idem_key = IdempotencyKey(
                namespace,
                digest(submission.idempotency_key),
                fingerprint(
                    spec.name,
                    submission.payload,
                    submission.options,
                    floats=submission.holds_floats,
                ),
                int(self.settings.idempotency_window * 1000),
            )
        message = None
        if not delay_ms:
            message = self.sender.prepare(
                job.id, spec.actor_name, spec.queue, 1, traceparent=traceparent
            )
        created = yield from transitions.create(job, idem_key, message.ready if message else None)
        if created.outcome == "conflict":
            raise IdempotencyConflict(created.job_id)
        if created.outcome == "duplicate":
            return Accepted(created.job_id, created.state, duplicate=True)
        if message is not None:
            self.sender.prepared_sent(message)
        return Accepted(job.id, state, duplicate=False)

    # --- reads ---------------------------------------------------------------------

    def get(self, job_id: str) -> Operation[JobRecord]:
        return queries.record(job_id)

    def events(self, job_id: str) -> Operation[list[dict[str, Any]]]:
        return queries.events(job_id)

    def list(
        self,
        *,
        state: str | None = None,
        job_type: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: int | None = None,
    ) -> Operation[Page]:
        return queries.page(state, job_type, limit, cursor)

    def stats(self) -> Operation[dict[str, Any]]:
        return queries.stats(self.job_types.names(), self.job_types.queues())

    # --- operations ----------------------------------------------------------------

    def cancel(self, job_id: str) -> Operation[JobRecord]:
        """Cancel a pending job; two round trips (the transition, then the record)."""
        yield from transitions.cancel(job_id, now_ms())
        return (yield from queries.record(job_id))

    def retry(self, job_id: str, *, reset_effects: bool = False) -> Operation[JobRecord]:
        """A failed or cancelled job back to waiting; its next attempt links this request's
        span."""
        link = current_traceparent()
        yield from transitions.retry(job_id, now_ms(), reset_effects=reset_effects, link=link)
        return (yield from queries.record(job_id))

    def retry_dead(
        self,
        *,
        job_type: str | None = None,
        reset_effects: bool = False,
        include_permanent: bool = False,
        limit: int = BULK_LIMIT,
    ) -> Operation[BulkRetry]:
        """Retry up to ``limit`` dead letters, oldest first.

        Jobs that need a human check are skipped unless ``reset_effects`` (a human checked
        and asks for their unfinished effects to run again); jobs failed permanently are
        skipped unless ``include_permanent``.
        """
        leave = [] if reset_effects else [FailureKind.HUMAN_CHECK]
        if not include_permanent:
            leave.append(FailureKind.PERMANENT)
        retried, skipped, link = 0, Counter[str](), current_traceparent()
        for job_id in (yield from queries.ids_in(State.FAILED, job_type, limit)):
            try:
                left = yield from transitions.retry(
                    job_id, now_ms(), reset_effects=reset_effects, leave=leave, link=link
                )
            except (JobNotFound, InvalidTransition):
                continue  # purged or retried meanwhile
            if isinstance(left, Skipped):
                skipped[left.failure] += 1
                continue
            retried += 1
        return BulkRetry(retried, dict(skipped))

    def purge_dead(self, *, job_type: str | None = None, limit: int = BULK_LIMIT) -> Operation[int]:
        """Delete up to ``limit`` dead letters (records, history, effects); how many went."""
        purged = 0
        for job_id in (yield from queries.ids_in(State.FAILED, job_type, limit)):
            purged += yield from transitions.purge(job_id, (State.FAILED,))
        return purged


class Jobs:
    """The one way in for producers (CLI, scheduler) and readers that wait on Redis: each
    method runs one of ``JobOperations`` on the store's executor."""

    def __init__(
        self, settings: Settings, store: RecordStore, sender: MessageSender, job_types: JobTypes
    ) -> None:
        self.settings = settings
        self.store = store
        self.sender = sender
        self.job_types = job_types
        self.operations = JobOperations(settings, sender, job_types)

    def submit(
        self,
        submission: Submission,
        *,
        namespace: str = CLIENT_NAMESPACE,
        trace_id: str = "",
        traceparent: str = "",
    ) -> Accepted:
        """``record_and_send`` inside the job's PRODUCER span, whose ids the record keeps."""
        with Submitting(
            self.operations,
            submission,
            namespace=namespace,
            trace_id=trace_id,
            traceparent=traceparent,
        ) as block:
            return block.accepted(self.store.executor.run(block.operation))

    def get(self, job_id: str) -> JobRecord:
        return self.store.executor.run(self.operations.get(job_id))

    def events(self, job_id: str) -> list[dict[str, Any]]:
        return self.store.executor.run(self.operations.events(job_id))

    def list(
        self,
        *,
        state: str | None = None,
        job_type: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: int | None = None,
    ) -> Page:
        return self.store.executor.run(
            self.operations.list(state=state, job_type=job_type, limit=limit, cursor=cursor)
        )

    def stats(self) -> dict[str, Any]:
        return self.store.executor.run(self.operations.stats())

    def cancel(self, job_id: str) -> JobRecord:
        return self.store.executor.run(self.operations.cancel(job_id))

    def retry(self, job_id: str, *, reset_effects: bool = False) -> JobRecord:
        return self.store.executor.run(self.operations.retry(job_id, reset_effects=reset_effects))

    def retry_dead(
        self,
        *,
        job_type: str | None = None,
        reset_effects: bool = False,
        include_permanent: bool = False,
        limit: int = BULK_LIMIT,
    ) -> BulkRetry:
        return self.store.executor.run(
            self.operations.retry_dead(
                job_type=job_type,
                reset_effects=reset_effects,
                include_permanent=include_permanent,
                limit=limit,
            )
        )

    def purge_dead(self, *, job_type: str | None = None, limit: int = BULK_LIMIT) -> int:
        return self.store.executor.run(self.operations.purge_dead(job_type=job_type, limit=limit))


class Submitting:
    """One submission's block, for either executor: the job's PRODUCER span, and its id made
    before the create script runs, so a script Redis did not answer (a timeout, a dropped
    connection), which may still have run, leaves as ``SubmissionMayExist`` naming the job.
    The executor runs ``operation``; ``accepted`` tags the span with its answer and counts it.
    """

    def __init__(
        self,
        operations: JobOperations,
        submission: Submission,
        *,
        namespace: str,
        trace_id: str,
        traceparent: str,
    ) -> None:
        self.submission = submission
        self.job_id = new_job_id()
        self._span = send_span(submission.spec.queue, submission.spec.name)
        self.sent = self._span.__enter__()
        self.operation = operations.record_and_send(
            submission,
            job_id=self.job_id,
            namespace=namespace,
            trace_id=trace_id or self.sent.trace_id,
            traceparent=traceparent or self.sent.traceparent,
        )

    def __enter__(self) -> Submitting:
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, StoreUnreachable):
            unconfirmed = SubmissionMayExist(self.job_id, exc)
            self._span.__exit__(SubmissionMayExist, unconfirmed, tb)
            raise unconfirmed from exc
        self._span.__exit__(kind, exc, tb)

    def accepted(self, accepted: Accepted) -> Accepted:
        self.sent.accepted(accepted.job_id, duplicate=accepted.duplicate)
        if not accepted.duplicate:  # a replay is not a new job
            series(JOBS_SUBMITTED, self.submission.spec.name).inc()
        return accepted
