"""Records attempts that began in this worker process as begun (``active``, their delivery
counted) a moment after they began, in one call for every attempt still running then.

A job that ends within that moment is recorded as begun by its end (``lua/finish.lua``),
so a short job costs no write of its own for its start: the one round trip of its ack. A
job cancelled while it was only ``claimed`` is named back, and asked to stop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from jobcore.clock import now_ms
from jobcore.errors import StoreUnavailable
from jobcore.execution.context import JobContext
from jobcore.outages import Backoff, StoreOutage
from jobcore.store import transitions
from jobcore.store.executor import Executor

#: How long an attempt runs before its start is recorded on its own, in seconds.
RECORD_AFTER = 0.05

log = structlog.get_logger("jobcore.execution.start_recorder")


class StartRecorder:
    """Writes the starts of this process's attempts that outlive ``RECORD_AFTER``."""

    def __init__(
        self,
        executor: Executor,
        worker_id: Callable[[], str],
        on_gone: Callable[[list[str]], None],
    ) -> None:
        self.executor = executor
        self.worker_id = worker_id
        self.on_gone = on_gone
        self._pending: dict[str, tuple[JobContext, int]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def began(self, job: JobContext) -> None:
        with self._lock:
            self._pending[job.id] = (job, job.started_at)

    def ended(self, job: JobContext) -> None:
        """The attempt ended: its end records its start, if this has not."""
        with self._lock:
            self._pending.pop(job.id, None)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="jobcore-starts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        # It looks every half ``RECORD_AFTER`` rather than being woken per job: at a few
        # thousand jobs a second a wake-up per job costs more than the look.
        outage = StoreOutage("start recorder")
        backoff = Backoff()
        pause = RECORD_AFTER / 2
        while not self._stop.wait(pause):
            pause = RECORD_AFTER / 2
            due = self._take_due()
            if not due:
                if not self._pending:
                    # Every start was recorded by its attempt's end, or there was none.
                    outage.stand_down()
                continue
            began = outage.began()
            try:
                gone = self.executor.run(transitions.begin(self.worker_id(), due))
            except StoreUnavailable as exc:
                outage.failed(exc)
                pause = backoff.next()
                continue
            except Exception:
                log.exception("start recorder error")
                continue
            outage.succeeded(began)
            backoff.reset()
            with self._lock:
                for job_id, *_ in due:
                    self._pending.pop(job_id, None)
            if gone:
                self.on_gone(gone)

    def _take_due(self) -> list[tuple[str, int, int, int]]:
        """The attempts begun at least ``RECORD_AFTER`` ago (they stay pending until
        written, so an outage loses none)."""
        limit = now_ms() - int(RECORD_AFTER * 1000)
        with self._lock:
            return [
                (job.id, job.generation, job.attempt, started)
                for job, started in self._pending.values()
                if started <= limit
            ]
