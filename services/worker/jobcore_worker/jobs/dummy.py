"""``dummy``: succeeds, fails N times, always fails, or sleeps — to exercise the system."""

from __future__ import annotations

from typing import Any

from jobcore.execution.context import JobContext


class DummyFailure(Exception):
    """The failure a dummy job was asked for."""


def run_dummy(job: JobContext) -> dict[str, Any]:
    payload = job.payload
    if payload.get("sleepSeconds"):
        job.sleep(float(payload["sleepSeconds"]))
    if payload.get("alwaysFail"):
        raise DummyFailure(f"asked to always fail (attempt {job.attempt})")
    if job.attempt <= int(payload.get("failTimes", 0)):
        raise DummyFailure(f"asked to fail {payload['failTimes']} time(s) (attempt {job.attempt})")
    return {"echo": payload, "attempt": job.attempt}
