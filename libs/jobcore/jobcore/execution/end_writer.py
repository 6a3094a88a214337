"""Writes the ends of this process's attempts in batches: every end that waits when the
writer comes round goes in one pipeline (a group commit), so under load many jobs share a
round trip and the worker thread that ran a job does not wait for its write.

An end is written after its job ran and before the process stops (``stop`` writes what is
left); a process killed in between leaves its job to recovery, which runs it again, as a
kill between a job's end and its write always could. An outage is waited out: no end is
dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

import structlog

from jobcore.outages import StoreOutage
from jobcore.store.calls import Operation
from jobcore.store.executor import Executor
from jobcore.store.transitions import Finished

#: Most ends one pipeline carries.
MAX_BATCH = 64

log = structlog.get_logger("jobcore.worker")

#: This process's end writer waiting out an outage (logged once).
_ENDS = StoreOutage("attempt ends")


class PendingEnd(Protocol):
    """An attempt's end waiting to be written."""

    def operation(self) -> Operation[Finished]:
        """The store operation that records it (and acks its message)."""
        ...

    def written(self, finished: Finished | Exception, *, tried_again: bool) -> None:
        """Told what writing it gave (``tried_again`` after a try that may have written it
        already, whose reply was lost): log it."""
        ...


class EndWriter:
    """One thread writing ends as they come, as many at a time as are waiting."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self._waiting: list[PendingEnd] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._writing = False

    def start(self) -> None:
        with self._changed:
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="jobcore-end-writer", daemon=True
                )
                self._thread.start()

    def put(self, end: PendingEnd) -> None:
        """Write ``end`` soon (at once, on this thread, when the writer is not running)."""
        with self._changed:
            if self._thread is not None:
                self._waiting.append(end)
                if not self._writing:
                    self._changed.notify()
                return
        self._write([end])

    def stop(self) -> None:
        """Write every end still waiting, then stop the thread."""
        with self._changed:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._changed.notify()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._writing = False
                self._changed.wait_for(lambda: bool(self._waiting) or self._stopping)
                if not self._waiting:
                    return
                batch = self._waiting[:MAX_BATCH]
                del self._waiting[:MAX_BATCH]
                self._writing = True
            self._write(batch)

    def _write(self, batch: Sequence[PendingEnd]) -> None:
        tries = 0

        def write() -> list[Finished | Exception]:
            nonlocal tries
            tries += 1
            return self.executor.run_many([end.operation() for end in batch])

        try:
            results = _ENDS.wait_out(write)
        except Exception as exc:  # a bug: every end is told, none is lost silently
            log.exception("attempt ends not written", error=str(exc))
            results = [exc] * len(batch)
        for end, result in zip(batch, results, strict=True):
            try:
                end.written(result, tried_again=tries > 1)
            except Exception:
                log.exception("attempt end not logged")
