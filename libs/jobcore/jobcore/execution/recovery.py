"""Recovery of jobs stranded by a lost worker host, run by whichever worker process holds
the ``sweeper`` lease: a ``claimed`` or ``active`` job whose owner's presence expired goes
back to ``waiting`` with a new generation, its message sent (``lua/recover_lost.lua``). A
worker process that dies under its supervisor is released at once instead
(``jobcore_worker.supervise``).
"""

from __future__ import annotations

import structlog

from jobcore.runtime import Runtime

log = structlog.get_logger("jobcore.execution.recovery")


class Sweeper:
    """Finds jobs whose owner is gone and sends them again (see the module docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def sweep(self) -> int:
        recovered = self.runtime.store.recover_lost()
        for job_id in recovered:
            log.warning("recovered a job from a lost worker", job_id=job_id)
        return len(recovered)
