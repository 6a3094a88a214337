"""``jobcore-scheduler``: periodiq keeps time; each minute's tick submits the due schedules' jobs.

Several schedulers may run side by side: every tick of one fire time yields the same job
(see ``jobcore.scheduling.schedules``). Ticks missed while no scheduler runs are not replayed.
SIGTERM or SIGINT stops it between ticks (a tick in progress finishes first).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType

import pendulum
import structlog

from jobcore.model.catalogue import load_job_types
from jobcore.outages import set_process_kind
from jobcore.runtime import build_runtime
from jobcore.scheduling.schedules import ScheduleBook
from jobcore.settings import Settings
from jobcore.startup import refuse_to_start_on_configuration_errors
from jobcore.telemetry.logs import configure_logging
from jobcore.telemetry.tracing import configure_tracing, shutdown_tracing
from jobcore_scheduler.heartbeat_thread import SchedulerPresence
from jobcore_scheduler.periodiq_clock import run_clock
from jobcore_scheduler.ticks import TickHandler

log = structlog.get_logger("jobcore.scheduler")


class GracefulStop:
    """Stops the process on SIGTERM/SIGINT, but never in the middle of a tick."""

    def __init__(self) -> None:
        self.busy = False
        self.requested = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.handle)
        signal.signal(signal.SIGINT, self.handle)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        if not self.busy:
            raise SystemExit(0)

    @contextmanager
    def tick(self) -> Iterator[None]:
        self.busy = True
        try:
            yield
        finally:
            self.busy = False
        if self.requested:
            raise SystemExit(0)


def use_utc() -> None:
    """periodiq reads ``pendulum.now()`` in the local zone: make that zone UTC, explicitly."""
    os.environ["TZ"] = "UTC"
    time.tzset()
    pendulum.set_local_timezone(pendulum.UTC)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog="jobcore-scheduler", description=__doc__).parse_args(argv)
    use_utc()
    with refuse_to_start_on_configuration_errors("scheduler"):
        settings = Settings.from_env()
        configure_logging(settings.log_level, service="scheduler", redact=settings.redacted_fields)
        set_process_kind("scheduler")
        configure_tracing("jobcore-scheduler")
        runtime = build_runtime(settings, job_types=load_job_types(settings.job_modules))
        book = ScheduleBook(runtime)
    stop = GracefulStop()
    handler = TickHandler(book)

    def on_tick(now: datetime) -> None:
        with stop.tick():
            handler(now)

    for schedule in book.schedules:
        log.info(
            "schedule",
            schedule=schedule.name,
            cron=schedule.cron,
            job_type=schedule.job_type,
            timezone="UTC",
        )
    presence = SchedulerPresence(runtime).start()
    stop.install()
    try:
        run_clock(on_tick)
    except SystemExit:
        log.info("scheduler stopping")
    finally:
        presence.stop()
        shutdown_tracing()


if __name__ == "__main__":
    main()
