"""What a running job sees: its id, payload, attempt, progress reporting, its effect guard,
and whether the worker asks it to stop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobcore.errors import JobInterrupted
from jobcore.execution.effects import EffectGuard
from jobcore.model.backoff import Backoff
from jobcore.settings import Settings

#: Makes each job's stop event once, whichever thread asks first.
_STOP_EVENTS = threading.Lock()


@dataclass
class JobContext:
    """Handed to a job implementation for one attempt."""

    id: str
    type: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    generation: int
    settings: Settings
    report_progress: Callable[[int], None] = field(repr=False)
    #: Guard for external effects: ``job.effects.run_once("send", action)``.
    effects: EffectGuard = field(repr=False)
    #: The retry policy's backoff (what the next retry waits).
    backoff: Backoff = field(default_factory=Backoff, repr=False)
    #: The worker process running the attempt (the record's owner).
    worker_id: str = ""
    #: Whether a graceful shutdown may interrupt this job (its spec's ``interruptible``).
    interruptible: bool = False
    #: When this attempt began (epoch ms).
    started_at: int = 0
    #: What the implementation returned, once it has.
    result: Any = field(default=None, repr=False)
    #: Whether the implementation returned (its attempt completed, whatever came after).
    finished: bool = False
    #: The event behind ``stop_requested``, made when first needed (most jobs never are).
    _stop: threading.Event | None = field(default=None, repr=False)

    @property
    def stop_requested(self) -> threading.Event:
        """Set when a graceful shutdown asks the job to stop (only for interruptible types)."""
        stop = self._stop
        if stop is None:
            with _STOP_EVENTS:
                if self._stop is None:
                    self._stop = threading.Event()
                stop = self._stop
        return stop

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    @property
    def should_stop(self) -> bool:
        """True once the worker shuts down and this job may be interrupted: a long loop
        checks it (or calls ``stop_if_asked``) between steps."""
        return self._stop is not None and self._stop.is_set()

    def stop_if_asked(self) -> None:
        """Raise ``JobInterrupted`` if a graceful shutdown asked this job to stop."""
        if self.should_stop:
            raise JobInterrupted(f"job {self.id} stopped by a graceful shutdown")

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; an interruptible job is woken at once by a graceful shutdown,
        which raises ``JobInterrupted``."""
        if self.stop_requested.wait(max(seconds, 0.0)):
            self.stop_if_asked()

    def request_stop(self) -> None:
        """Ask the job to stop at its next ``sleep`` or check (the worker is shutting down)."""
        if self.interruptible:
            self.stop_requested.set()


_current = threading.local()


def current_job() -> JobContext:
    """The job the calling worker thread is running; ``RuntimeError`` outside a job."""
    job: JobContext | None = getattr(_current, "job", None)
    if job is None:
        raise RuntimeError("no Jobcore job is running in this thread")
    return job


def set_current_job(job: JobContext | None) -> None:
    _current.job = job
