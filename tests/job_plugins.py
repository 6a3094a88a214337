"""Job types that exist only in the tests, loaded through ``JOBCORE_JOB_MODULES``."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from jobcore import Backoff, JobContext, JobSpec, PermanentError, RetryPolicy

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

#: Burns CPU for ``seconds`` under a one-second time limit.
CPU_LOOP = JobSpec(
    name="test-cpu-loop",
    queue="default",
    payload_schema={"type": "object", "properties": {"seconds": {"type": "number"}}},
    retry=RetryPolicy(1),
    time_limit_ms=1000,
)
#: Appends a line to ``path`` inside a guarded effect; with ``dieOnce`` the worker is
#: SIGKILLed inside the effect, after the line is written, the first time only.
EFFECT_THEN_DIE = JobSpec(
    name="test-effect-then-die",
    queue="default",
    payload_schema={"type": "object"},
    retry=RetryPolicy(3),
)

#: Raises ``PermanentError``: never retried, whatever attempts are left.
PERMANENT = JobSpec(
    name="test-permanent",
    queue="default",
    payload_schema={"type": "object"},
    retry=RetryPolicy(5, Backoff("fixed", 100, None, 0.0)),
)
#: Raises ``KeyError``, which its type declares never retried.
NEVER_RETRIED = JobSpec(
    name="test-never-retried",
    queue="default",
    payload_schema={"type": "object"},
    retry=RetryPolicy(5, Backoff("fixed", 100, None, 0.0)),
    permanent_errors=(KeyError,),
)

#: Returns what JSON cannot hold: a ``datetime`` (``{"kind": "datetime"}``) or NaN and an
#: infinity (``{"kind": "nan"}``).
UNSTORABLE_RESULT = JobSpec(
    name="test-unstorable-result",
    queue="default",
    payload_schema={"type": "object", "properties": {"kind": {"enum": ["datetime", "nan"]}}},
    retry=RetryPolicy(3),
)

SPECS = [
    HOLD_GIL,
    KILL_WORKER,
    CPU_LOOP,
    EFFECT_THEN_DIE,
    PERMANENT,
    NEVER_RETRIED,
    UNSTORABLE_RESULT,
]


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


def cpu_loop(job: JobContext) -> dict[str, Any]:
    deadline = time.perf_counter() + float(job.payload.get("seconds", 3))
    spins = 0
    while time.perf_counter() < deadline:
        spins += 1
    return {"spins": spins}


def effect_then_die(job: JobContext) -> str:
    path = job.payload["path"]
    marker = path + ".died"

    def append_line() -> str:
        with open(path, "a") as handle:
            handle.write(f"{job.id} attempt {job.attempt}\n")
        if job.payload.get("dieOnce") and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), 9)
        return "written"

    return job.effects.run_once("append-line", append_line)


def permanent(job: JobContext) -> None:
    raise PermanentError(f"the payload cannot be used (attempt {job.attempt})")


def never_retried(job: JobContext) -> None:
    raise KeyError("missing-thing")


def unstorable_result(job: JobContext) -> dict[str, Any]:
    if job.payload.get("kind") == "nan":
        return {"ratio": float("nan"), "big": float("inf")}
    return {"at": datetime.now(UTC)}


IMPLEMENTATIONS = {
    "test-unstorable-result": unstorable_result,
    "test-permanent": permanent,
    "test-never-retried": never_retried,
    "test-hold-gil": hold_gil,
    "test-kill-worker": kill_worker,
    "test-cpu-loop": cpu_loop,
    "test-effect-then-die": effect_then_die,
}
