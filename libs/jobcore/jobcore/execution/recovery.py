"""Recovery of stranded jobs, run by whichever worker process holds the ``sweeper`` lease:

- *due*: a pending job whose message should have been in a ready queue for longer than
  ``sweep_margin`` (never enqueued, or a delayed message lost with a worker's memory) gets
  a new message with a new generation;
- *orphans*: an ``active`` job whose owner's heartbeat expired goes back to ``waiting``
  with a new generation and a new message.
"""

from __future__ import annotations

import structlog

from jobcore.clock import now_ms
from jobcore.runtime import Runtime

#: Jobs examined per sweep and per kind.
SWEEP_BATCH = 200

log = structlog.get_logger("jobcore.execution.recovery")


class Sweeper:
    """Finds stranded jobs and sends them again (see the module docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.margin_ms = int(runtime.settings.sweep_margin * 1000)

    def sweep(self) -> int:
        store, jobs = self.runtime.store, self.runtime.jobs
        recovered = 0
        for job_id in store.overdue(now_ms() - self.margin_ms, SWEEP_BATCH):
            again = store.recover_due(job_id, self.margin_ms)
            if again:
                jobs.enqueue_again(again)
                recovered += 1
                log.warning("re-enqueued a stranded job", job_id=job_id)
        for job_id in store.active_ids(SWEEP_BATCH):
            again = store.recover_orphan(job_id)
            if again:
                jobs.enqueue_again(again)
                recovered += 1
                log.warning("recovered a job from a lost worker", job_id=job_id)
        return recovered
