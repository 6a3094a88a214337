"""Job types that exist only in the tests, loaded through ``JOBCORE_JOB_MODULES``."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from jobcore.backoff import RetryPolicy
from jobcore.context import JobContext
from jobcore.specs import JobSpec

#: Holds the GIL in one C call for ``seconds`` (no other thread of the process runs).
HOLD_GIL = JobSpec(
    name="test-hold-gil",
    queue="default",
    payload_schema={"type": "object", "properties": {"seconds": {"type": "number"}}},
    retry=RetryPolicy(1),
)
#: Kills its own worker process with SIGKILL, every time.
KILL_WORKER = JobSpec(
    name="test-kill-worker",
    queue="default",
    payload_schema={"type": "object"},
    retry=RetryPolicy(2),
)

SPECS = [HOLD_GIL, KILL_WORKER]


def hold_gil(job: JobContext) -> dict[str, Any]:
    seconds = float(job.payload.get("seconds", 1))
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1000)  # no thread switch while this thread spins
    try:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            pass
    finally:
        sys.setswitchinterval(previous)
    return {"held": seconds, "pid": os.getpid()}


def kill_worker(job: JobContext) -> None:
    os.kill(os.getpid(), 9)


IMPLEMENTATIONS = {"test-hold-gil": hold_gil, "test-kill-worker": kill_worker}
