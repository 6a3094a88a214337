"""``RecordStore``: job records in Redis for the rest of Jobcore. Each method runs one
operation of ``transitions`` (one script per lifecycle transition) or ``queries`` through
the executor, and is one round trip unless it says otherwise."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from jobcore.clock import now_ms
from jobcore.model.records import JobRecord
from jobcore.model.states import OWNED, AttemptOutcome, FailureKind
from jobcore.store import queries, transitions
from jobcore.store.executor import Executor
from jobcore.store.queries import Page
from jobcore.store.transitions import (
    CreateOutcome,
    Finished,
    IdempotencyKey,
    NewJob,
    Promoted,
    ReadyMessage,
    Skipped,
)

__all__ = [
    "CreateOutcome",
    "Finished",
    "IdempotencyKey",
    "NewJob",
    "Page",
    "Promoted",
    "ReadyMessage",
    "RecordStore",
    "Skipped",
]


#: Most jobs one recovery call moves (a sweep calls again next time for the rest).
RECOVERY_BATCH = 1000


class RecordStore:
    """Job records: create, start, finish, operate, recover and read them."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    # --- transitions -------------------------------------------------------------

    def create(
        self,
        job: NewJob,
        idempotency: IdempotencyKey | None = None,
        message: ReadyMessage | None = None,
    ) -> CreateOutcome:
        """Record an accepted job (and, with ``message``, enqueue it) in one script."""
        return self.executor.run(transitions.create(job, idempotency, message))

    def finish(
        self,
        job_id: str,
        generation: int,
        worker_id: str,
        outcome: AttemptOutcome,
        **details: Any,
    ) -> Finished:
        """Record how an attempt ended (``transitions.finish`` names the details)."""
        return self.executor.run(
            transitions.finish(job_id, generation, worker_id, now_ms(), outcome, **details)
        )

    def set_progress(self, job_id: str, worker_id: str, progress: int) -> bool:
        return self.executor.run(transitions.set_progress(job_id, worker_id, progress))

    def retry(
        self,
        job_id: str,
        reset_effects: bool = False,
        *,
        leave: Collection[FailureKind] = (),
        link: str = "",
    ) -> Skipped | None:
        """A failed or cancelled job back to waiting, its message sent; a dead letter whose
        failure kind is in ``leave`` is left alone (``Skipped``)."""
        return self.executor.run(
            transitions.retry(job_id, now_ms(), reset_effects=reset_effects, leave=leave, link=link)
        )

    def purge(self, job_id: str, states: Collection[str]) -> bool:
        """Delete a job in one of ``states`` with its history, effects and index entries."""
        return self.executor.run(transitions.purge(job_id, states))

    # --- recovery ------------------------------------------------------------------

    def promote(self, limit: int) -> Promoted:
        """Send the messages of up to ``limit`` jobs whose time in the due set has come."""
        return self.executor.run(transitions.promote(now_ms(), limit))

    def owned_ids(self, limit: int) -> list[str]:
        """Ids of jobs a worker process holds (``claimed`` or ``active``); two round trips."""
        return [i for state in OWNED for i in self.ids_in(state, None, limit)][:limit]

    def recover_lost(self, owner: str = "", limit: int = RECOVERY_BATCH) -> list[str]:
        """Jobs claimed or running under a process that is gone back to ``waiting``, with
        their messages: ``owner``'s at once (its presence goes too), or (``owner`` '') those
        of every owner whose presence expired. The ids recovered."""
        return self.executor.run(transitions.recover_lost(owner, now_ms(), limit))

    # --- reads ---------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord:
        return self.executor.run(queries.record(job_id))

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """The job's history, oldest first, times as RFC 3339."""
        return self.executor.run(queries.events(job_id))

    def ids_in(self, state: str, job_type: str | None, limit: int) -> list[str]:
        """Oldest-first ids of jobs in ``state`` (optionally of one type), at most ``limit``."""
        return self.executor.run(queries.ids_in(state, job_type, limit))

    def list(self, state: str | None, job_type: str | None, limit: int, cursor: int | None) -> Page:
        """Newest first from the indexes matching the filters; two round trips."""
        return self.executor.run(queries.page(state, job_type, limit, cursor))
