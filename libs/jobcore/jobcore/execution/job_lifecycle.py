"""The worker side of the lifecycle: a Dramatiq middleware that starts, finishes, retries and
dead-letters jobs through their records, and binds implementations to specs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import dramatiq
import structlog
from dramatiq.middleware import Middleware, Shutdown, SkipMessage, TimeLimitExceeded
from opentelemetry import trace

from jobcore.broker import JobcoreRedisBroker, claim_of, end_attempt
from jobcore.clock import now_ms
from jobcore.errors import (
    ConfigurationError,
    JobCancelled,
    JobInterrupted,
    PermanentError,
    UnstorableResult,
)
from jobcore.execution.context import JobContext, set_current_job
from jobcore.execution.effects import EffectGuard, HumanCheckRequired
from jobcore.execution.end_writer import EndWriter
from jobcore.execution.start_recorder import StartRecorder
from jobcore.message_options import GENERATION_OPTION
from jobcore.model.records import result_json
from jobcore.model.specs import JobSpec, JobTypes
from jobcore.model.states import STATE_OF_OUTCOME, AttemptOutcome
from jobcore.outages import StoreOutage
from jobcore.runtime import Runtime
from jobcore.store import transitions
from jobcore.store.calls import Operation
from jobcore.store.transitions import Finished, MessageAck
from jobcore.telemetry.tracing import current_traceparent

#: A job implementation: takes the job's context, returns a JSON-serialisable result.
JobFunction = Callable[[JobContext], Any]

log = structlog.get_logger("jobcore.worker")

#: How long a job a graceful shutdown requeued waits in the due set before its message is
#: sent again, in ms.
REQUEUE_PAUSE_MS = 1000


class AttemptListener(Protocol):
    """Told when an attempt starts and how it ended (metrics, span details)."""

    def attempt_started(self, job: JobContext) -> None: ...

    def attempt_ended(
        self, job: JobContext, outcome: AttemptOutcome, exception: BaseException | None
    ) -> None: ...


def describe_error(exc: BaseException, time_limit_ms: int) -> str:
    if isinstance(exc, TimeLimitExceeded):
        return f"time limit of {time_limit_ms / 1000:g} s exceeded"
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}"[:2000] if text else name


#: Exceptions that end an attempt on Jobcore's own request (a graceful shutdown, a cancel).
ENDED_ON_REQUEST = (JobInterrupted, JobCancelled, Shutdown)


class ExpectedEnds(logging.Filter):
    """Drops Dramatiq's "unhandled exception" error, traceback included, for an attempt
    Jobcore ended on purpose (``ENDED_ON_REQUEST``): the lifecycle logs those itself, as
    "job requeued by shutdown" or a cancel."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ENDED_ON_REQUEST))


#: On the logger of Dramatiq's worker threads (``execution.middleware``).
EXPECTED_ENDS = ExpectedEnds()


def attempt_outcome(
    job: JobContext, exception: BaseException | None, spec: JobSpec | None = None
) -> AttemptOutcome:
    """How an attempt ended. A job whose implementation returned completed, whatever was
    raised after it; an interruption by a graceful shutdown is not an attempt."""
    if exception is None or job.finished:
        return AttemptOutcome.COMPLETED
    if isinstance(exception, ENDED_ON_REQUEST):
        return AttemptOutcome.REQUEUED
    if isinstance(exception, HumanCheckRequired):
        return AttemptOutcome.NEEDS_HUMAN_CHECK
    never_retried = spec.permanent_errors if spec else ()
    if isinstance(exception, PermanentError) or (
        never_retried and isinstance(exception, never_retried)
    ):
        return AttemptOutcome.FAILED_PERMANENTLY
    if job.is_last_attempt:
        return AttemptOutcome.FAILED
    return AttemptOutcome.RETRYING


#: Record transitions of this process's worker threads waiting out an outage: one outage
#: is logged once for all of them (``jobcore.outages``).
_TRANSITIONS = StoreOutage("record transitions")


def until_stored(action: Callable[[], Any]) -> Any:
    """Run a store call, waiting out a Redis outage (or replicas slow to confirm it): a
    transition must not be dropped. Tries back off from 0.1 s doubling to 2 s."""
    return _TRANSITIONS.wait_out(action)


class JobLifecycle(Middleware):
    """Moves each job's record through the lifecycle around every Dramatiq message.

    The job was claimed for this process when its message was fetched
    (``broker.JobcoreRedisConsumer``); its attempt begins here without a write (the start
    recorder writes the start of an attempt that outlives a moment), and its end is
    recorded with the ack of its message, in the same script (``AttemptEnd``), by the
    process's end writer.
    """

    def __init__(
        self,
        runtime: Runtime,
        worker_id: Callable[[], str],
        listeners: tuple[AttemptListener, ...] = (),
    ) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.worker_id = worker_id
        self.listeners = listeners
        # Keyed by worker thread, not message id: a stale duplicate of a running job's
        # message (same id) may be skipped on another thread meanwhile.
        self._jobs: dict[int, JobContext] = {}
        self._stopping = threading.Event()
        self.starts = StartRecorder(runtime.executor, worker_id, self._gone)
        self.ends = EndWriter(runtime.executor)

    def in_flight(self) -> int:
        """Jobs this process is running now."""
        return len(self._jobs)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        self.starts.start()
        self.ends.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        # From now on nothing is claimed or starts here, and interruptible jobs are asked
        # to stop.
        self._stopping.set()
        if isinstance(broker, JobcoreRedisBroker):
            broker.claiming = False
        for job in list(self._jobs.values()):
            job.request_stop()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        # Every attempt has ended: their ends are written before the process's heartbeat
        # (a middleware further up) stops.
        self.ends.stop()
        self.starts.stop()

    def _gone(self, job_ids: list[str]) -> None:
        """Jobs cancelled while this process held them claimed: their runs are asked to stop
        (their end will not be recorded)."""
        for job in list(self._jobs.values()):
            if job.id in job_ids:
                log.info("job cancelled while it ran: asked to stop", job_id=job.id)
                job.request_stop()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        generation = message.options.get(GENERATION_OPTION)
        claim = claim_of(message)
        if generation is None or claim is None:
            raise SkipMessage("not a Jobcore message")
        job_id = message.message_id
        if self._stopping.is_set():
            # A message that reached this thread while the process shuts down goes back to
            # its queue untouched (its ack releases the claim) for another process to start.
            log.info("message returned to its queue: shutting down", job_id=job_id)
            raise SkipMessage("shutting down")
        wid = self.worker_id()
        spec = self.runtime.job_types.find(claim.job_type)
        job = JobContext(
            id=job_id,
            type=claim.job_type,
            payload=claim.payload,
            attempt=claim.attempt,
            max_attempts=claim.max_attempts,
            generation=generation,
            settings=self.runtime.settings,
            report_progress=lambda p: self._progress(job_id, wid, p),
            effects=EffectGuard(
                self.runtime.executor, job_id, claim.attempt, lambda: self._begin_now(job)
            ),
            backoff=claim.backoff,
            worker_id=wid,
            interruptible=bool(spec and spec.interruptible),
            started_at=now_ms(),
        )
        if claim.damaged:
            reason = "failed permanently: the stored payload could not be decoded"
            details = {"error": reason, "failed_reason": reason}
            end_attempt(message, AttemptEnd(self, job, AttemptOutcome.FAILED_PERMANENTLY, details))
            raise SkipMessage("damaged record")
        self._jobs[threading.get_ident()] = job
        self.starts.began(job)
        set_current_job(job)
        structlog.contextvars.bind_contextvars(
            job_id=job_id, job_type=job.type, attempt=job.attempt
        )
        # A first attempt's start is routine; a retry's is worth a line.
        if job.attempt > 1:
            log.info("job started", max_attempts=job.max_attempts)
        else:
            log.debug("job started", max_attempts=job.max_attempts)
        for listener in self.listeners:
            listener.attempt_started(job)

    def _begin_now(self, job: JobContext) -> None:
        """Record the attempt as begun before its first guarded effect, so from then on it
        cannot be cancelled; a cancel that came first stops it here (``JobCancelled``)."""
        if until_stored(lambda: self.starts.begin_now(job)):
            raise JobCancelled(job.id)

    def _progress(self, job_id: str, wid: str, progress: int) -> None:
        self.store.set_progress(job_id, wid, max(0, min(100, int(progress))))

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._forget()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        job = self._jobs.get(threading.get_ident())
        if job is None:
            return
        try:
            self.starts.ended(job)
            spec = self.runtime.job_types.find(job.type)
            outcome = attempt_outcome(job, exception, spec)
            result_text = ""
            if outcome is AttemptOutcome.COMPLETED:
                try:
                    result_text = result_json(job.result)
                except UnstorableResult as unstorable:
                    exception, outcome = unstorable, AttemptOutcome.FAILED_PERMANENTLY
            for listener in self.listeners:
                listener.attempt_ended(job, outcome, exception)
            details, delay = _details(job, outcome, exception, spec, result_text)
            end = AttemptEnd(self, job, outcome, details, delay, trace.get_current_span())
            end_attempt(message, end)
        finally:
            self._forget()

    def _forget(self) -> None:
        self._jobs.pop(threading.get_ident(), None)
        set_current_job(None)
        structlog.contextvars.unbind_contextvars("job_id", "job_type", "attempt")


class AttemptEnd:
    """How one attempt ended: the ack of its message hands it to the end writer, which
    records it with the ack (``lua/finish.lua``: the end and the ack in one script), then
    it is logged once."""

    def __init__(
        self,
        lifecycle: JobLifecycle,
        job: JobContext,
        outcome: AttemptOutcome,
        details: dict[str, Any],
        delay: int = 0,
        span: trace.Span = trace.INVALID_SPAN,
    ) -> None:
        self.lifecycle = lifecycle
        self.job = job
        self.outcome = outcome
        self.details = details
        #: A retry's backoff, in ms.
        self.delay = delay
        #: The attempt's span: the end's log line is written after it ended, and names it.
        self.span = span
        self.ended_at = now_ms()
        self.ack: MessageAck | None = None

    def record(self, ack: MessageAck) -> None:
        """Have the end written with ``ack`` (an outage is waited out: no end is dropped)."""
        self.ack = ack
        self.lifecycle.ends.put(self)

    def operation(self) -> Operation[Finished]:
        job = self.job
        return transitions.finish(
            job.id,
            job.generation,
            job.worker_id,
            self.ended_at,
            self.outcome,
            attempt=job.attempt,
            started_at=job.started_at,
            ack=self.ack,
            **self.details,
        )

    def written(self, finished: Finished | Exception, *, tried_again: bool = False) -> None:
        job = self.job
        if (
            tried_again
            and isinstance(finished, Finished)
            and finished.state == STATE_OF_OUTCOME.get(self.outcome)
        ):
            # An earlier try wrote it (its reply was lost): the record shows this end.
            finished = Finished(True)
        with trace.use_span(self.span, end_on_exit=False):
            if isinstance(finished, Exception):
                log.error(
                    "attempt end not recorded",
                    job_id=job.id,
                    job_type=job.type,
                    attempt=job.attempt,
                    error=describe_error(finished, 0),
                )
            elif finished.recorded:
                _log_end(job, self.outcome, self.details, self.delay)
            else:
                log.info(
                    "attempt ended after its job moved on (cancelled or recovered): not recorded",
                    job_id=job.id,
                    job_type=job.type,
                    attempt=job.attempt,
                )


def _details(
    job: JobContext,
    outcome: AttemptOutcome,
    exception: BaseException | None,
    spec: JobSpec | None,
    result_text: str = "",
) -> tuple[dict[str, Any], int]:
    """What the end of an attempt writes besides its outcome, and a retry's backoff (ms)."""
    # The attempt's span is current: a retry's or requeue's next attempt links to it.
    details: dict[str, Any] = {"link": current_traceparent()}
    delay = 0
    if outcome is AttemptOutcome.COMPLETED:
        details["result_text"] = result_text
    elif outcome is AttemptOutcome.REQUEUED:
        # Processes stop one after another: the pause keeps a peer that is about to stop
        # from starting the job in between.
        details["next_attempt_at"] = now_ms() + REQUEUE_PAUSE_MS
    else:
        assert exception is not None
        details["error"] = error = describe_error(exception, spec.time_limit_ms if spec else 0)
        if outcome is AttemptOutcome.RETRYING:
            delay = job.backoff.delay_for(job.attempt)
            details["next_attempt_at"] = now_ms() + delay
        else:
            details["failed_reason"] = _failed_reason(outcome, job, exception, error)
    return details, delay


def _log_end(job: JobContext, outcome: AttemptOutcome, details: dict[str, Any], delay: int) -> None:
    """One line per finished attempt (written by the ack, outside the attempt's context)."""
    fields = {"job_id": job.id, "job_type": job.type, "attempt": job.attempt}
    if outcome is AttemptOutcome.COMPLETED:
        if job.attempt > 1:
            log.info("job recovered after retries", retries=job.attempt - 1, **fields)
        else:
            log.info("job completed", **fields)
    elif outcome is AttemptOutcome.REQUEUED:
        log.info("job requeued by shutdown", **fields)
    elif outcome is AttemptOutcome.RETRYING:
        log.warning(
            "job attempt failed, will retry", error=details["error"], delay_ms=delay, **fields
        )
    else:
        log.error(
            "job failed",
            error=details["error"],
            failed_reason=details["failed_reason"],
            outcome=str(outcome),
            **fields,
        )


def _failed_reason(
    outcome: AttemptOutcome, job: JobContext, exception: BaseException, error: str
) -> str:
    """The record's ``failedReason`` for an attempt that made the job a dead letter."""
    if outcome is AttemptOutcome.NEEDS_HUMAN_CHECK:
        return str(exception)
    if outcome is AttemptOutcome.FAILED_PERMANENTLY:
        return f"failed permanently in attempt {job.attempt} (not retried): {error}"
    return f"failed after {job.attempt} attempt(s): {error}"


def bind_implementations(
    runtime: Runtime, implementations: Mapping[str, JobFunction]
) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Declare one actor per spec; refuse a spec without code or code without a spec."""
    job_types: JobTypes = runtime.job_types
    check_implementations(job_types, implementations)
    actors = {}
    for spec in job_types.specs:
        declare = dramatiq.actor(
            actor_name=spec.actor_name,
            queue_name=spec.queue,
            broker=runtime.broker,
            time_limit=spec.time_limit_ms,
        )
        actors[spec.name] = declare(_actor_body(implementations[spec.name]))
    return actors


def check_implementations(job_types: JobTypes, implementations: Mapping[str, JobFunction]) -> None:
    """``ConfigurationError`` unless every spec has an implementation and every
    implementation a spec."""
    missing = sorted(set(job_types.names()) - set(implementations))
    unknown = sorted(set(implementations) - set(job_types.names()))
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"no implementation for job type(s): {', '.join(missing)}")
        if unknown:
            parts.append(f"implementation(s) without a spec: {', '.join(unknown)}")
        raise ConfigurationError("; ".join(parts))


def _actor_body(implementation: JobFunction) -> Callable[..., Any]:
    from jobcore.execution.context import current_job

    def run(*_args: Any, **_kwargs: Any) -> None:
        # The result travels in the context, not as the actor's return value, so
        # Dramatiq does not need (or warn about) a results backend.
        job = current_job()
        job.result = implementation(job)
        job.finished = True

    run.__name__ = getattr(implementation, "__name__", "run")
    run.__module__ = getattr(implementation, "__module__", __name__)
    return run
