"""Each schedule's last run in Redis: its newest fire time and the job it made."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jobcore.store import keys, scripts
from jobcore.store.calls import Operation, commands


@dataclass(frozen=True)
class LastRun:
    fire_time_ms: int
    job_id: str
    #: The job's state now; ``None`` once the job was pruned.
    state: str | None


def record(schedule: str, fire_time_ms: int, job_id: str) -> Operation[bool]:
    """Keep the newest fire time: a late tick of an older minute never hides a newer run."""
    recorded = yield scripts.RECORD_LAST_RUN.call(
        keys={"last_run": keys.schedule_last_run(schedule)},
        args={"fire_time_ms": fire_time_ms, "job_id": job_id},
    )
    return bool(recorded)


def last_runs(schedules: Sequence[str]) -> Operation[dict[str, LastRun | None]]:
    """Each schedule's latest fire time, its job and that job's state; two round trips."""
    found = yield commands(*[("HGETALL", keys.schedule_last_run(name)) for name in schedules])
    made = [last for last in found if last]
    states = (
        (yield commands(*[("HGET", keys.job(last["jobId"]), "state") for last in made]))
        if made
        else []
    )
    next_state = iter(states)
    return {
        name: LastRun(int(last["fireTime"]), last["jobId"], next(next_state)) if last else None
        for name, last in zip(schedules, found, strict=True)
    }
