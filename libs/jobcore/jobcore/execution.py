"""The worker side of the lifecycle: a Dramatiq middleware that starts, finishes, retries and
dead-letters jobs through their records, and binds implementations to specs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import dramatiq
import structlog
from dramatiq.middleware import Middleware, Shutdown, SkipMessage, TimeLimitExceeded

from jobcore.backoff import Backoff
from jobcore.broker import GENERATION_OPTION, TRACEPARENT_OPTION
from jobcore.clock import now_ms
from jobcore.context import JobContext, set_current_job
from jobcore.effects import EffectGuard, HumanCheckRequired
from jobcore.errors import ConfigurationError, StoreUnavailable
from jobcore.runtime import Runtime
from jobcore.specs import JobTypes

#: A job implementation: takes the job's context, returns a JSON-serialisable result.
JobFunction = Callable[[JobContext], Any]

#: First and longest pause while the store is unreachable mid-transition, in seconds.
STORE_RETRY_FIRST = 0.1
STORE_RETRY_MAX = 2.0

log = structlog.get_logger("jobcore.worker")


def describe_error(exc: BaseException, time_limit_ms: int) -> str:
    if isinstance(exc, TimeLimitExceeded):
        return f"time limit of {time_limit_ms / 1000:g} s exceeded"
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}"[:2000] if text else name


def attempt_outcome(job: JobContext, exception: BaseException | None) -> str:
    """What the end of an attempt means: ``completed``, ``requeued`` (graceful shutdown,
    not an attempt), ``retrying``, or ``failed`` (a dead letter)."""
    if exception is None:
        return "completed"
    if isinstance(exception, Shutdown):
        return "requeued"
    if isinstance(exception, HumanCheckRequired) or job.is_last_attempt:
        return "failed"
    return "retrying"


def until_stored(action: Callable[[], Any], what: str) -> Any:
    """Run a store call, waiting out a Redis outage: a transition must not be dropped."""
    pause = STORE_RETRY_FIRST
    while True:
        try:
            return action()
        except StoreUnavailable as exc:
            log.warning("store unavailable, retrying", transition=what, error=str(exc))
            time.sleep(pause)
            pause = min(pause * 2, STORE_RETRY_MAX)


class JobLifecycle(Middleware):
    """Moves each job's record through the lifecycle around every Dramatiq message."""

    def __init__(self, runtime: Runtime, worker_id: Callable[[], str]) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.worker_id = worker_id
        # Keyed by worker thread, not message id: a stale duplicate of a running job's
        # message (same id) may be skipped on another thread meanwhile.
        self._jobs: dict[int, JobContext] = {}
        self._stopping = False

    def in_flight(self) -> int:
        """Jobs this process is running now."""
        return len(self._jobs)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        generation = message.options.get(GENERATION_OPTION)
        if generation is None:
            raise SkipMessage("not a Jobcore message")
        job_id, wid = message.message_id, self.worker_id()
        if self._stopping:
            self._hand_back(message, generation)
            raise SkipMessage("worker stopping")
        start = until_stored(lambda: self.store.start(job_id, generation, wid), "start")
        if start.outcome != "started":
            log.info("message skipped", job_id=job_id, reason=start.outcome, detail=start.detail)
            raise SkipMessage(start.outcome)
        job = JobContext(
            id=job_id,
            type=start.detail,
            payload=start.payload,
            attempt=start.attempt,
            max_attempts=start.max_attempts,
            generation=generation,
            settings=self.runtime.settings,
            report_progress=lambda p: self._progress(job_id, wid, p),
            effects=EffectGuard(self.runtime.client, job_id, start.attempt),
            extras={"backoff": start.backoff or {}, "worker_id": wid},
        )
        self._jobs[threading.get_ident()] = job
        set_current_job(job)
        structlog.contextvars.bind_contextvars(
            job_id=job_id, job_type=job.type, attempt=job.attempt
        )
        log.info("job started", max_attempts=job.max_attempts)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        # Dramatiq's worker threads keep taking messages while the worker stops (its
        # consumers run until the threads are done), after the shutdown notification went
        # out: a job started now would run to its end, past any grace period.
        self._stopping = True

    def _hand_back(self, message: Any, generation: int) -> None:
        """Send a message this stopping process will not start again, for another worker;
        the record is untouched and the message itself is then acknowledged (skipped)."""
        job_id = message.message_id
        until_stored(
            lambda: self.runtime.jobs.sender.send(
                job_id,
                message.actor_name,
                message.queue_name,
                generation,
                traceparent=message.options.get(TRACEPARENT_OPTION, ""),
            ),
            "hand back",
        )
        log.info("message handed back: worker stopping", job_id=job_id)

    def _progress(self, job_id: str, wid: str, progress: int) -> None:
        self.store.set_progress(job_id, wid, max(0, min(100, int(progress))))

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._forget(message)

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
            self._finish(job, exception)
        finally:
            self._forget(message)

    def _forget(self, message: Any) -> None:
        self._jobs.pop(threading.get_ident(), None)
        set_current_job(None)
        structlog.contextvars.unbind_contextvars("job_id", "job_type", "attempt")

    def _finish(self, job: JobContext, exception: BaseException | None) -> None:
        wid, store, result = job.extras["worker_id"], self.store, job.extras.get("result")
        spec = self.runtime.job_types.find(job.type)
        time_limit_ms = spec.time_limit_ms if spec else 0
        outcome = attempt_outcome(job, exception)
        if outcome == "completed":
            until_stored(lambda: store.complete(job.id, job.generation, wid, result), "complete")
            if job.attempt > 1:
                log.info("job recovered after retries", retries=job.attempt - 1)
            else:
                log.info("job completed")
            return
        if outcome == "requeued":
            again = until_stored(lambda: store.requeue(job.id, job.generation, wid), "requeue")
            if again:
                until_stored(lambda: self.runtime.jobs.enqueue_again(again), "enqueue")
            log.info("job requeued by shutdown")
            return
        assert exception is not None
        error = describe_error(exception, time_limit_ms)
        if outcome == "retrying":
            delay = Backoff.from_json(job.extras["backoff"]).delay_for(job.attempt)
            again = until_stored(
                lambda: store.schedule_retry(job.id, job.generation, wid, error, now_ms() + delay),
                "retry",
            )
            if again:
                until_stored(
                    lambda: self.runtime.jobs.enqueue_again(again, delay_ms=delay or None),
                    "enqueue",
                )
            log.warning("job attempt failed, will retry", error=error, delay_ms=delay)
            return
        human = isinstance(exception, HumanCheckRequired)
        reason = str(exception) if human else f"failed after {job.attempt} attempt(s): {error}"
        until_stored(
            lambda: store.fail(job.id, job.generation, wid, error, reason, human_check=human),
            "fail",
        )
        log.error("job failed", error=error, failed_reason=reason)

    def after_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        # A delayed message moved to its ready queue carries the flag but no delay.
        if delay is None and message.options.get("jobcore_delayed"):
            generation = message.options.get(GENERATION_OPTION)
            until_stored(lambda: self.store.confirm_ready(message.message_id, generation), "ready")


def bind_implementations(
    runtime: Runtime, implementations: Mapping[str, JobFunction]
) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Declare one actor per spec; refuse a spec without code or code without a spec."""
    job_types: JobTypes = runtime.job_types
    missing = sorted(set(job_types.names()) - set(implementations))
    unknown = sorted(set(implementations) - set(job_types.names()))
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"no implementation for job type(s): {', '.join(missing)}")
        if unknown:
            parts.append(f"implementation(s) without a spec: {', '.join(unknown)}")
        raise ConfigurationError("; ".join(parts))

    actors = {}
    for spec in job_types.specs:
        declare = dramatiq.actor(
            actor_name=spec.actor_name,
            queue_name=spec.queue,
            broker=runtime.broker,
            time_limit=spec.time_limit_ms,
            notify_shutdown=spec.interruptible,
        )
        actors[spec.name] = declare(_actor_body(implementations[spec.name]))
    return actors


def _actor_body(implementation: JobFunction) -> Callable[..., Any]:
    from jobcore.context import current_job

    def run(*_args: Any, **_kwargs: Any) -> None:
        # The result travels in the context, not as the actor's return value, so
        # Dramatiq does not need (or warn about) a results backend.
        job = current_job()
        job.extras["result"] = implementation(job)

    run.__name__ = getattr(implementation, "__name__", "run")
    run.__module__ = getattr(implementation, "__module__", __name__)
    return run
