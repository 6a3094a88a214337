"""A tick becomes submissions: ``TickHandler`` submits the job of every schedule due at the
tick's minute from this process (so a tick never waits on a worker), retrying while the
store is briefly unavailable. Which minutes a schedule fires at is decided by Jobcore's
cron (``jobcore.scheduling``), in UTC, the same code ``GET /schedules`` answers from; the
ticks come from ``periodiq_clock``.
"""

from __future__ import annotations

import time
from datetime import datetime

import structlog

from jobcore.errors import JobcoreError, StoreUnavailable
from jobcore.outages import Backoff, StoreOutage
from jobcore.scheduling.schedules import Schedule, ScheduleBook

#: How long a tick keeps trying to submit while Redis is unavailable, in seconds. Well under
#: a minute: the next tick must not be delayed by this one.
TICK_RETRY_SECONDS = 20.0
#: Longest pause between those tries, in seconds (from 0.1 s, doubling).
TICK_RETRY_PAUSE = 1.0

log = structlog.get_logger("jobcore.scheduler")


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
