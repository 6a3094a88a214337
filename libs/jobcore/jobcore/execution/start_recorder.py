"""Records attempts that began in this worker process as begun (``active``, their delivery
counted) a moment after they began, in one call for every attempt still running then.

A job that ends within that moment is recorded as begun by its end (``lua/finish.lua``),
so a short job costs no write of its own for its start: the one round trip of its ack. An
attempt about to run its first guarded effect is recorded at once (``begin_now``). A job
cancelled while it was only ``claimed`` is named back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from jobcore.clock import now_ms
from jobcore.execution.context import JobContext
from jobcore.outages import StoreLoop
from jobcore.store import transitions
from jobcore.store.executor import Executor

#: How long an attempt runs before its start is recorded on its own, in seconds.
RECORD_AFTER = 0.05


class StartRecorder(StoreLoop):
    """Writes the starts of this process's attempts that outlive ``RECORD_AFTER``.

    It looks every half ``RECORD_AFTER`` rather than being woken per job: at a few thousand
    jobs a second a wake-up per job costs more than the look.
    """

    def __init__(
        self,
        executor: Executor,
        worker_id: Callable[[], str],
        on_gone: Callable[[list[str]], None],
    ) -> None:
        super().__init__("start recorder", self._record_due, idle=RECORD_AFTER / 2)
        self.executor = executor
        self.worker_id = worker_id
        self.on_gone = on_gone
        self._pending: dict[str, JobContext] = {}
        self._lock = threading.Lock()

    def began(self, job: JobContext) -> None:
        with self._lock:
            self._pending[job.id] = job

    def ended(self, job: JobContext) -> None:
        """The attempt ended: its end records its start, if this has not."""
        with self._lock:
            self._pending.pop(job.id, None)

    def begin_now(self, job: JobContext) -> bool:
        """Record ``job``'s start now; whether its job is gone from this process (cancelled
        while it was claimed)."""
        self.ended(job)
        return bool(self._write([job]))

    def _record_due(self) -> float | None:
        """Write the starts of the attempts begun at least ``RECORD_AFTER`` ago (they stay
        pending until written, so an outage loses none); ``None`` when none was due."""
        limit = now_ms() - int(RECORD_AFTER * 1000)
        with self._lock:
            due = [job for job in self._pending.values() if job.started_at <= limit]
        if not due:
            return None
        gone = self._write(due)
        with self._lock:
            for job in due:
                self._pending.pop(job.id, None)
        if gone:
            self.on_gone(gone)
        return self.idle

    def _write(self, jobs: list[JobContext]) -> list[str]:
        begun = [(job.id, job.generation, job.attempt, job.started_at) for job in jobs]
        return self.executor.run(transitions.begin(self.worker_id(), begun))
