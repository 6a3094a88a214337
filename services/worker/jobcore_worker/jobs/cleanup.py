"""``cleanup``: prunes terminal records past their retention (the ``cleanup`` schedule runs it)."""

from __future__ import annotations

import time
from typing import Any

from jobcore.execution.context import JobContext
from jobcore.store.retention import DEFAULT_BATCH, RetentionPruner

#: Seconds one run prunes before it stops and leaves the rest to the next run; well inside
#: the type's time limit, so a large backlog never turns into a failed attempt.
RUN_SECONDS = 60.0


def run_cleanup(job: JobContext) -> dict[str, Any]:
    pruner = RetentionPruner.connect(
        job.settings, batch=int(job.payload.get("batchSize", DEFAULT_BATCH))
    )
    try:
        report = pruner.prune(deadline=time.monotonic() + RUN_SECONDS)
    finally:
        pruner.close()
    return {"pruned": report.pruned, "batches": report.batches, "complete": report.complete}
