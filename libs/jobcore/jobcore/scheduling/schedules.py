"""The schedules, declared in one place, and turning a scheduler tick into one job per fire time.

A schedule fires at the minutes its cron expression (UTC) names. The *fire time* of a
tick is the nominal minute it belongs to — the tick's time without its seconds — so a
tick sent late, sent twice (two schedulers) or sent again (a restart inside the minute)
belongs to the same fire time. Each fire time is submitted with the idempotency key
``schedule:{name}:{fire time}`` in the scheduler's namespace: every tick of one fire time
yields the same job. Ticks that no scheduler sent are not replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from jobcore.clock import TIME_SCHEMA, format_ms
from jobcore.errors import ConfigurationError, InvalidRequest
from jobcore.intake.idempotency import SCHEDULER_NAMESPACE
from jobcore.intake.limits import RequestLimits
from jobcore.intake.submission import Submission, SubmissionParser
from jobcore.jobs import Accepted
from jobcore.runtime import Runtime
from jobcore.scheduling.cron import Cron, floor_minute
from jobcore.store import schedule_runs
from jobcore.store.calls import Operation
from jobcore.store.schedule_runs import LastRun


@dataclass(frozen=True)
class Schedule:
    """A job submitted at every minute ``cron`` (UTC) names."""

    name: str
    cron: str
    job_type: str
    payload: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @cached_property
    def when(self) -> Cron:
        return Cron.parse(self.cron)


HEARTBEAT = Schedule(
    name="heartbeat",
    cron="* * * * *",
    job_type="dummy",
    payload={"echo": "heartbeat"},
    description="Every minute: a dummy job that shows scheduler and workers are alive.",
)
CLEANUP = Schedule(
    name="cleanup",
    cron="*/5 * * * *",
    job_type="cleanup",
    payload={},
    description="Every five minutes: prunes terminal records past their retention.",
)

#: Every schedule the scheduler runs.
SCHEDULES: tuple[Schedule, ...] = (HEARTBEAT, CLEANUP)


def fire_time(schedule: Schedule, now: datetime) -> datetime | None:
    """The nominal fire time (UTC) a tick at ``now`` belongs to, or ``None`` if none."""
    minute = floor_minute(now)
    return minute if schedule.when.matches(minute) else None


def idempotency_key(schedule: Schedule, fired_at: datetime) -> str:
    """``schedule:{name}:{fire time as RFC 3339}``: the same for every tick of one fire time."""
    return f"schedule:{schedule.name}:{format_ms(epoch_ms(fired_at))}"


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Fired:
    """One schedule's fire time and the job it yielded (the same job for every tick)."""

    schedule: Schedule
    fire_time: datetime
    accepted: Accepted


#: The JSON Schema of an item of ``ScheduleBook.describe`` (``GET /schedules``).
SCHEDULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "name, cron (UTC), job type, next run, last run's job",
    "required": ["name", "cron", "jobType", "payload", "nextRunAt", "lastRun"],
    "properties": {
        "name": {"type": "string"},
        "cron": {"type": "string"},
        "timezone": {"const": "UTC"},
        "jobType": {"type": "string"},
        "payload": {"type": "object"},
        "description": {"type": "string"},
        "nextRunAt": TIME_SCHEMA,
        "lastRun": {
            "description": "the latest fire time, its job and the job's state (null once the "
            "job was pruned); null before any run",
            "type": ["object", "null"],
            "required": ["fireTime", "jobId", "state"],
            "properties": {
                "fireTime": TIME_SCHEMA,
                "jobId": {"type": "string"},
                "state": {"type": ["string", "null"]},
            },
        },
    },
}


def last_run_view(last: LastRun) -> dict[str, Any]:
    """A schedule's last run as ``GET /schedules`` shows it."""
    return {"fireTime": format_ms(last.fire_time_ms), "jobId": last.job_id, "state": last.state}


class ScheduleBook:
    """The schedules of one process, with their last runs kept in Redis."""

    def __init__(self, runtime: Runtime, schedules: Sequence[Schedule] = SCHEDULES) -> None:
        self.runtime = runtime
        self.schedules = tuple(schedules)
        self.parser = SubmissionParser(
            runtime.job_types, limits=RequestLimits.from_settings(runtime.settings)
        )
        self._check()

    def _check(self) -> None:
        """Refuse to start with a schedule that could never submit its job."""
        names = [s.name for s in self.schedules]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"schedule names must be unique: {names}")
        epoch = datetime(2000, 1, 1, tzinfo=UTC)
        for schedule in self.schedules:
            try:
                Cron.parse(schedule.cron)
            except ValueError as exc:
                raise ConfigurationError(f"schedule {schedule.name!r}: {exc}") from exc
            try:
                self.submission(schedule, epoch)
            except InvalidRequest as exc:
                raise ConfigurationError(f"schedule {schedule.name!r}: {exc}") from exc

    def find(self, name: str) -> Schedule | None:
        return next((s for s in self.schedules if s.name == name), None)

    def submission(self, schedule: Schedule, fired_at: datetime) -> Submission:
        body = {
            "type": schedule.job_type,
            "payload": schedule.payload,
            "idempotencyKey": idempotency_key(schedule, fired_at),
        }
        return self.parser.parse(body, now_ms=epoch_ms(fired_at))

    def due(self, now: datetime) -> list[tuple[Schedule, datetime]]:
        """The schedules a tick at ``now`` fires, with their fire time."""
        fired = ((s, fire_time(s, now)) for s in self.schedules)
        return [(s, at) for s, at in fired if at is not None]

    def fire(self, schedule: Schedule, fired_at: datetime) -> Fired:
        """Submit the fire time's job (or find the one an earlier tick made) and record it."""
        accepted = self.runtime.jobs.submit(
            self.submission(schedule, fired_at), namespace=SCHEDULER_NAMESPACE
        )
        self.runtime.executor.run(
            schedule_runs.record(schedule.name, epoch_ms(fired_at), accepted.job_id)
        )
        return Fired(schedule, fired_at, accepted)

    def tick(self, now: datetime) -> list[Fired]:
        """Everything one tick at ``now`` does: one submission per schedule due."""
        return [self.fire(schedule, at) for schedule, at in self.due(now)]

    def last_runs(self) -> dict[str, LastRun | None]:
        """Each schedule's latest fire time, its job and that job's state; two round trips."""
        return self.runtime.executor.run(self.reading_last_runs())

    def reading_last_runs(self) -> Operation[dict[str, LastRun | None]]:
        """``last_runs`` as a store operation (for an executor of the caller's choosing)."""
        return schedule_runs.last_runs([schedule.name for schedule in self.schedules])

    def describe(
        self, now: datetime, runs: dict[str, LastRun | None] | None = None
    ) -> list[dict[str, Any]]:
        """``GET /schedules`` items: what each schedule does, its next run and its last run
        (``runs`` as ``last_runs`` gives them; read now when not given)."""
        runs = self.last_runs() if runs is None else runs
        items = []
        for schedule in self.schedules:
            last = runs[schedule.name]
            items.append(
                {
                    "name": schedule.name,
                    "cron": schedule.cron,
                    "timezone": "UTC",
                    "jobType": schedule.job_type,
                    "payload": schedule.payload,
                    "description": schedule.description,
                    "nextRunAt": format_ms(epoch_ms(schedule.when.next_after(now))),
                    "lastRun": last_run_view(last) if last else None,
                }
            )
        return items
