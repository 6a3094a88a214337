"""The worker side of the lifecycle: a Dramatiq middleware that starts, finishes, retries and
dead-letters jobs through their records, and binds implementations to specs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import dramatiq
import structlog
from dramatiq.middleware import Middleware, Shutdown, SkipMessage, TimeLimitExceeded

from jobcore.broker import release_on_ack
from jobcore.clock import now_ms
from jobcore.errors import ConfigurationError, JobInterrupted, PermanentError
from jobcore.execution.context import JobContext, set_current_job
from jobcore.execution.effects import EffectGuard, HumanCheckRequired
from jobcore.message_options import GENERATION_OPTION
from jobcore.model.backoff import Backoff
from jobcore.model.specs import JobSpec, JobTypes
from jobcore.model.states import AttemptOutcome
from jobcore.outages import StoreOutage
from jobcore.runtime import Runtime
from jobcore.telemetry.tracing import current_traceparent

#: A job implementation: takes the job's context, returns a JSON-serialisable result.
JobFunction = Callable[[JobContext], Any]

log = structlog.get_logger("jobcore.worker")


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


def attempt_outcome(
    job: JobContext, exception: BaseException | None, spec: JobSpec | None = None
) -> AttemptOutcome:
    """How an attempt ended. A job whose implementation returned completed, whatever was
    raised after it; an interruption by a graceful shutdown is not an attempt."""
    if exception is None or job.finished:
        return AttemptOutcome.COMPLETED
    if isinstance(exception, JobInterrupted | Shutdown):
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
    """Moves each job's record through the lifecycle around every Dramatiq message."""

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

    def in_flight(self) -> int:
        """Jobs this process is running now."""
        return len(self._jobs)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        # From now on nothing starts here, and interruptible jobs are asked to stop.
        self._stopping.set()
        for job in list(self._jobs.values()):
            job.request_stop()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        generation = message.options.get(GENERATION_OPTION)
        if generation is None:
            raise SkipMessage("not a Jobcore message")
        job_id = message.message_id
        if self._stopping.is_set():
            # A message that reached this thread while the process shuts down goes back to
            # its queue untouched (the ack becomes a requeue) for another process to start.
            release_on_ack(message)
            log.info("message returned to its queue: shutting down", job_id=job_id)
            raise SkipMessage("shutting down")
        wid = self.worker_id()
        start = until_stored(lambda: self.store.start(job_id, generation, wid))
        if start.outcome != "started":
            log.info("message skipped", job_id=job_id, reason=start.outcome, detail=start.reason)
            raise SkipMessage(start.outcome)
        if start.damaged:
            reason = "failed permanently: the stored payload could not be decoded"
            until_stored(
                lambda: self.store.finish(
                    job_id,
                    generation,
                    wid,
                    AttemptOutcome.FAILED_PERMANENTLY,
                    error=reason,
                    failed_reason=reason,
                )
            )
            log.error("job failed", job_id=job_id, failed_reason=reason)
            raise SkipMessage("damaged record")
        spec = self.runtime.job_types.find(start.job_type)
        job = JobContext(
            id=job_id,
            type=start.job_type,
            payload=start.payload,
            attempt=start.attempt,
            max_attempts=start.max_attempts,
            generation=generation,
            settings=self.runtime.settings,
            report_progress=lambda p: self._progress(job_id, wid, p),
            effects=EffectGuard(self.runtime.executor, job_id, start.attempt),
            backoff=Backoff.from_json(start.backoff or {}),
            worker_id=wid,
            interruptible=bool(spec and spec.interruptible),
        )
        self._jobs[threading.get_ident()] = job
        if self._stopping.is_set():
            job.request_stop()  # the shutdown began while the record was being started
        set_current_job(job)
        structlog.contextvars.bind_contextvars(
            job_id=job_id, job_type=job.type, attempt=job.attempt
        )
        log.info("job started", max_attempts=job.max_attempts)
        for listener in self.listeners:
            listener.attempt_started(job)

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
            spec = self.runtime.job_types.find(job.type)
            outcome = attempt_outcome(job, exception, spec)
            for listener in self.listeners:
                listener.attempt_ended(job, outcome, exception)
            self._record(job, outcome, exception, spec)
        finally:
            self._forget()

    def _forget(self) -> None:
        self._jobs.pop(threading.get_ident(), None)
        set_current_job(None)
        structlog.contextvars.unbind_contextvars("job_id", "job_type", "attempt")

    def _record(
        self,
        job: JobContext,
        outcome: AttemptOutcome,
        exception: BaseException | None,
        spec: JobSpec | None,
    ) -> None:
        """Write the attempt's end to the record (waiting out an outage; the script sends the
        message a requeue needs, or leaves a retry in the due set), and log it once."""
        details: dict[str, Any] = {}
        delay = 0
        if outcome is AttemptOutcome.COMPLETED:
            details["result"] = job.result
        elif outcome is not AttemptOutcome.REQUEUED:
            assert exception is not None
            details["error"] = error = describe_error(exception, spec.time_limit_ms if spec else 0)
            if outcome is AttemptOutcome.RETRYING:
                delay = job.backoff.delay_for(job.attempt)
                details["next_attempt_at"] = now_ms() + delay
            else:
                details["failed_reason"] = _failed_reason(outcome, job, exception, error)
        # The attempt's span is current: a retry's or requeue's next attempt links to it.
        details["link"] = current_traceparent()
        until_stored(
            lambda: self.store.finish(job.id, job.generation, job.worker_id, outcome, **details)
        )
        _log_end(job, outcome, details, delay)


def _log_end(job: JobContext, outcome: AttemptOutcome, details: dict[str, Any], delay: int) -> None:
    """One line per finished attempt."""
    if outcome is AttemptOutcome.COMPLETED:
        if job.attempt > 1:
            log.info("job recovered after retries", retries=job.attempt - 1)
        else:
            log.info("job completed")
    elif outcome is AttemptOutcome.REQUEUED:
        log.info("job requeued by shutdown")
    elif outcome is AttemptOutcome.RETRYING:
        log.warning("job attempt failed, will retry", error=details["error"], delay_ms=delay)
    else:
        log.error(
            "job failed",
            error=details["error"],
            failed_reason=details["failed_reason"],
            outcome=str(outcome),
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
