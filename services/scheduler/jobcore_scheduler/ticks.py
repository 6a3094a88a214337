"""The scheduler's broker: periodiq "sends" a tick each minute, and the tick becomes submissions.

periodiq keeps time — it wakes at the start of every minute and sends its periodic actor.
``TickBroker`` never queues that message: it hands the tick's time to ``TickHandler``,
which submits the job of every schedule due at that minute from this process, so a tick
never waits on a worker. Which minutes a schedule fires at is decided by Jobcore's cron
(``jobcore.scheduling.schedules``), in UTC, the same code ``GET /schedules`` answers from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import dramatiq
import structlog
from dramatiq.brokers.stub import StubBroker
from periodiq import PeriodiqMiddleware, cron

from jobcore.errors import JobcoreError, StoreUnavailable
from jobcore.outages import Backoff, StoreOutage
from jobcore.scheduling.schedules import Schedule, ScheduleBook

#: Name of the one periodic actor; its messages are never sent anywhere.
TICK_ACTOR = "jobcore_schedule_tick"
#: periodiq wakes the scheduler every minute; each schedule's cron picks its own minutes.
EVERY_MINUTE = "* * * * *"
#: How long a tick keeps trying to submit while Redis is unavailable, in seconds. Well under
#: a minute: the next tick must not be delayed by this one.
TICK_RETRY_SECONDS = 20.0
#: Longest pause between those tries, in seconds (from 0.1 s, doubling).
TICK_RETRY_PAUSE = 1.0

log = structlog.get_logger("jobcore.scheduler")


def tick_time(message: dramatiq.Message[Any]) -> datetime:
    """The time periodiq scheduled the tick for (its ``scheduled_at`` option), in UTC."""
    scheduled_at = message.options.get("scheduled_at")
    if not scheduled_at:
        return datetime.now(UTC)
    return datetime.fromisoformat(str(scheduled_at)).astimezone(UTC)


class TickBroker(StubBroker):
    """A broker whose ``enqueue`` hands each periodiq tick to ``on_tick`` instead of a queue."""

    def __init__(self, on_tick: Callable[[datetime], None]) -> None:
        # PeriodiqMiddleware declares the ``periodic`` actor option.
        super().__init__(middleware=[PeriodiqMiddleware()])
        self.on_tick = on_tick

    def enqueue(
        self, message: dramatiq.Message[Any], *, delay: int | None = None
    ) -> dramatiq.Message[Any]:
        self.on_tick(tick_time(message))
        return message


def tick_actor(broker: TickBroker) -> dramatiq.Actor[..., None]:
    """The periodic actor periodiq schedules every minute on ``broker``."""

    def tick() -> None:
        """Never runs: ``TickBroker`` turns its messages into submissions."""

    declare = dramatiq.actor(actor_name=TICK_ACTOR, broker=broker, periodic=cron(EVERY_MINUTE))
    return declare(tick)


class TickHandler:
    """Submits the job of each schedule due at a tick; never lets an error stop the clock."""

    def __init__(
        self,
        book: ScheduleBook,
        *,
        retry_for: float = TICK_RETRY_SECONDS,
        pause: float = TICK_RETRY_PAUSE,
    ) -> None:
        self.book = book
        self.retry_for = retry_for
        self.pause = pause
        #: Every schedule's tries share one outage: logged once, not once per try.
        self.outage = StoreOutage("scheduler ticks")

    def __call__(self, now: datetime) -> None:
        for schedule, fired_at in self.book.due(now):
            self.fire(schedule, fired_at)

    def fire(self, schedule: Schedule, fired_at: datetime) -> None:
        deadline = time.monotonic() + self.retry_for
        context = {"schedule": schedule.name, "fire_time": fired_at.isoformat()}
        backoff = Backoff(longest=self.pause)
        while True:
            try:
                fired = self.book.fire(schedule, fired_at)
            except StoreUnavailable as exc:
                self.outage.failed(exc)
                pause = backoff.next()
                if time.monotonic() + pause > deadline:
                    log.error("schedule tick lost: the store stayed unavailable", **context)
                    return
                time.sleep(pause)
                continue
            except JobcoreError as exc:
                log.error("schedule tick refused", error=str(exc), **context)
                return
            except Exception:
                log.exception("schedule tick failed", **context)
                return
            self.outage.succeeded()
            log.info(
                "schedule fired",
                job_id=fired.accepted.job_id,
                duplicate=fired.accepted.duplicate,
                **context,
            )
            return
