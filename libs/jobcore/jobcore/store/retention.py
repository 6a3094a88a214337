"""Retention: terminal records past their retention are deleted, in bounded batches.

Completed and cancelled jobs go ``settings.retention`` after they finished, failed ones
(dead letters) ``settings.failed_retention`` after. Candidates come from the terminal
state-and-type indexes, oldest accepted first: a walk stops at the first job accepted after
the horizon (it, and every later one, finished after it too), so a run reads only what it
deletes plus the few old jobs that finished late. Each script call (``lua/prune.lua``)
examines at most one batch, so Redis is never blocked for long, and deletes each job whole
— record, effects, index entry, idempotency key — so counts and listings never see half a
job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from jobcore.clock import now_ms
from jobcore.model.states import TERMINAL, State
from jobcore.settings import Settings
from jobcore.store import keys, scripts
from jobcore.store.calls import Operation, commands
from jobcore.store.connection import connect
from jobcore.store.executor import Executor

#: Jobs examined per script call.
DEFAULT_BATCH = 200


@dataclass(frozen=True)
class PruneReport:
    """What one pruning run did; ``complete`` is false when it stopped at its deadline."""

    pruned: int
    batches: int
    complete: bool


def prune_batch(
    state: str, job_type: str, now: int, retention_ms: int, batch: int, offset: int
) -> Operation[tuple[int, int, bool]]:
    """(pruned, kept, done) for one batch of one index after ``offset`` kept jobs."""
    pruned, kept, done = yield scripts.PRUNE.call(
        keys={"index": keys.index_state_type(state, job_type), "due": keys.DUE},
        args={
            "state": state,
            "now": now,
            "retention_ms": retention_ms,
            "batch": batch,
            "offset": offset,
        },
    )
    return int(pruned), int(kept), bool(done)


def accepted_types() -> Operation[list[str]]:
    (found,) = yield commands(("SMEMBERS", keys.TYPES))
    return sorted(found)


class RetentionPruner:
    """Deletes terminal records past their retention (see the module docstring)."""

    def __init__(self, executor: Executor, settings: Settings, batch: int = DEFAULT_BATCH) -> None:
        self.executor = executor
        self.retention_ms = int(settings.retention * 1000)
        self.failed_retention_ms = int(settings.failed_retention * 1000)
        self.batch = batch

    @classmethod
    def connect(cls, settings: Settings, batch: int = DEFAULT_BATCH) -> RetentionPruner:
        """A pruner with its own connection to ``settings.redis_url``."""
        return cls(Executor(connect(settings)), settings, batch)

    def close(self) -> None:
        self.executor.client.close()

    def retention_ms_of(self, state: str) -> int:
        return self.failed_retention_ms if state == State.FAILED else self.retention_ms

    def prune_batch(
        self, state: str, job_type: str, now: int, offset: int = 0
    ) -> tuple[int, int, bool]:
        """(pruned, kept, done) for one batch of one index after ``offset`` kept jobs."""
        return self.executor.run(
            prune_batch(state, job_type, now, self.retention_ms_of(state), self.batch, offset)
        )

    def prune(self, now: int | None = None, *, deadline: float | None = None) -> PruneReport:
        """Every terminal index in turn, batch after batch, until none has anything due or
        ``time.monotonic()`` passes ``deadline``."""
        at = now_ms() if now is None else now
        job_types = self.executor.run(accepted_types())
        pruned = batches = 0
        for state in TERMINAL:
            for job_type in job_types:
                offset, done = 0, False
                while not done:
                    if deadline is not None and batches and time.monotonic() >= deadline:
                        return PruneReport(pruned, batches, complete=False)
                    gone, kept, done = self.prune_batch(state, job_type, at, offset)
                    pruned, batches, offset = pruned + gone, batches + 1, offset + kept
        return PruneReport(pruned, batches, complete=True)
