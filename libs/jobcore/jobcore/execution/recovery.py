"""Recovery of jobs stranded by a lost worker, run by whichever worker process holds the
``sweeper`` lease: an ``active`` job whose owner's heartbeat expired goes back to
``waiting`` with a new generation, its message sent (``lua/recover_orphan.lua``).
"""

from __future__ import annotations

import structlog

from jobcore.runtime import Runtime

#: Jobs examined per sweep.
SWEEP_BATCH = 200

log = structlog.get_logger("jobcore.execution.recovery")


class Sweeper:
    """Finds jobs whose owner is gone and sends them again (see the module docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def sweep(self) -> int:
        store = self.runtime.store
        recovered = 0
        for job_id in store.active_ids(SWEEP_BATCH):
            if store.recover_orphan(job_id):
                recovered += 1
                log.warning("recovered a job from a lost worker", job_id=job_id)
        return recovered
