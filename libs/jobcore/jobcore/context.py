"""What a running job sees: its id, payload, attempt, and a way to report progress."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobcore.effects import EffectGuard
from jobcore.settings import Settings


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
    extras: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


_current = threading.local()


def current_job() -> JobContext:
    """The job the calling worker thread is running; ``RuntimeError`` outside a job."""
    job: JobContext | None = getattr(_current, "job", None)
    if job is None:
        raise RuntimeError("no Jobcore job is running in this thread")
    return job


def set_current_job(job: JobContext | None) -> None:
    _current.job = job
