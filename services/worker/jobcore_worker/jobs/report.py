"""``report``: a long-running job that reports its progress from 0 to 100."""

from __future__ import annotations

import time
from typing import Any

from jobcore.execution.context import JobContext

#: Steps when the payload names none.
DEFAULT_STEPS = 10


def build_report(job: JobContext) -> dict[str, Any]:
    duration = float(job.payload["durationSeconds"])
    steps = int(job.payload.get("steps", DEFAULT_STEPS))
    started = time.monotonic()
    for step in range(1, steps + 1):
        job.sleep(duration / steps)
        job.report_progress(step * 100 // steps)
    return {
        "steps": steps,
        "durationSeconds": round(time.monotonic() - started, 3),
        "attempt": job.attempt,
    }
