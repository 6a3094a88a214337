"""periodiq as a minute clock, and nothing more.

periodiq is what wakes the scheduler at the start of every minute (SIGALRM-based, in the
main thread) and sends its periodic actor. Jobcore uses it for that alone: its own
``CronSpec`` is not used to decide what fires, because periodiq 0.14's matcher never
matches a Sunday written as ``0``, rejects month names, accepts minute 99, and answers
Monday 13:00 for ``0 9-17 * * 1`` asked on Sunday noon; ``jobcore.scheduling.cron``
decides instead. The periodic actor here runs every minute on a stub broker whose
``enqueue`` is intercepted: its message is never queued anywhere; the tick's time goes to a
callback (``ticks.TickHandler``), which submits the due schedules' jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import dramatiq
import periodiq
from dramatiq.brokers.stub import StubBroker
from periodiq import PeriodiqMiddleware, cron

#: Name of the one periodic actor; its messages are never sent anywhere.
TICK_ACTOR = "jobcore_schedule_tick"
#: periodiq wakes the scheduler every minute; each schedule's cron picks its own minutes.
EVERY_MINUTE = "* * * * *"


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


def run_clock(on_tick: Callable[[datetime], None]) -> None:
    """Call ``on_tick`` at the start of every minute until the process is told to stop."""
    scheduler = periodiq.Scheduler(actors=[tick_actor(TickBroker(on_tick))])
    scheduler.schedule()
    scheduler.loop()
