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
from typing import Any, cast

from jobcore.clock import format_ms
from jobcore.errors import ConfigurationError, InvalidRequest
from jobcore.intake.idempotency import SCHEDULER_NAMESPACE
from jobcore.intake.limits import RequestLimits
from jobcore.intake.submission import Submission, SubmissionParser
from jobcore.jobs import Accepted
from jobcore.runtime import Runtime
from jobcore.scheduling.cron import Cron, floor_minute
from jobcore.store import keys
from jobcore.store.connection import store_errors


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

#: Keeps the newest fire time: a late tick of an older minute never hides a newer run.
_RECORD_LAST_RUN = """
local current = redis.call('HGET', KEYS[1], 'fireTime')
if current and tonumber(current) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'fireTime', ARGV[1], 'jobId', ARGV[2])
return 1
"""


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


@dataclass(frozen=True)
class LastRun:
    fire_time_ms: int
    job_id: str
    state: str | None

    def to_api(self) -> dict[str, Any]:
        return {"fireTime": format_ms(self.fire_time_ms), "jobId": self.job_id, "state": self.state}


class ScheduleBook:
    """The schedules of one process, with their last runs kept in Redis."""

    def __init__(self, runtime: Runtime, schedules: Sequence[Schedule] = SCHEDULES) -> None:
        self.runtime = runtime
        self.schedules = tuple(schedules)
        self.parser = SubmissionParser(
            runtime.job_types, limits=RequestLimits.from_settings(runtime.settings)
        )
        self._record_last_run = runtime.client.register_script(_RECORD_LAST_RUN)
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
        with store_errors():
            self._record_last_run(
                keys=[keys.schedule_last_run(schedule.name)],
                args=[epoch_ms(fired_at), accepted.job_id],
            )
        return Fired(schedule, fired_at, accepted)

    def tick(self, now: datetime) -> list[Fired]:
        """Everything one tick at ``now`` does: one submission per schedule due."""
        return [self.fire(schedule, at) for schedule, at in self.due(now)]

    def last_runs(self) -> dict[str, LastRun | None]:
        """Each schedule's latest fire time, its job and that job's state; two round trips."""
        client = self.runtime.client
        with store_errors():
            pipe = client.pipeline(transaction=False)
            for schedule in self.schedules:
                pipe.hgetall(keys.schedule_last_run(schedule.name))
            found = cast(list[dict[str, str]], pipe.execute())
            pipe = client.pipeline(transaction=False)
            for last in found:
                if last:
                    pipe.hget(keys.job(last["jobId"]), "state")
            states = iter(cast(list[str | None], pipe.execute()) if any(found) else [])
        runs: dict[str, LastRun | None] = {}
        for schedule, last in zip(self.schedules, found, strict=True):
            runs[schedule.name] = (
                LastRun(int(last["fireTime"]), last["jobId"], next(states)) if last else None
            )
        return runs

    def describe(self, now: datetime) -> list[dict[str, Any]]:
        """``GET /schedules`` items: what each schedule does, its next run and its last run."""
        runs = self.last_runs()
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
                    "lastRun": last.to_api() if last else None,
                }
            )
        return items
