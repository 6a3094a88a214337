"""The scheduler process's heartbeat (kind ``scheduler``), refreshed on a thread.

``jobcore health scheduler`` and ``GET /workers`` read it; the periodiq loop owns the
main thread (it waits on SIGALRM), so the beat runs beside it.
"""

from __future__ import annotations

import threading

import structlog

from jobcore.errors import StoreUnavailable
from jobcore.outages import Backoff, StoreOutage
from jobcore.presence import Heartbeat
from jobcore.runtime import Runtime

log = structlog.get_logger("jobcore.scheduler")


class SchedulerPresence:
    """Beats every ``heartbeat_interval`` until stopped, then removes its key."""

    def __init__(self, runtime: Runtime) -> None:
        self.heartbeat = Heartbeat(runtime, "scheduler", [])
        self.interval = runtime.settings.heartbeat_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobcore-presence", daemon=True)

    def start(self) -> SchedulerPresence:
        self._thread.start()
        return self

    def _run(self) -> None:
        outage = StoreOutage("scheduler heartbeat")
        backoff = Backoff()
        while True:
            pause = self.interval
            try:
                self.heartbeat.beat()
            except StoreUnavailable as exc:
                # One line per outage; tries back off up to the beat interval.
                outage.failed(exc)
                pause = min(backoff.next(), self.interval)
            except Exception:
                log.exception("scheduler heartbeat failed")
            else:
                outage.succeeded()
                backoff.reset()
            if self._stop.wait(pause):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.heartbeat.remove()
        except Exception as exc:
            log.warning("could not remove the scheduler heartbeat", error=str(exc))
