"""The scheduler process's heartbeat (kind ``scheduler``), refreshed on a thread.

``jobcore health scheduler`` and ``GET /workers`` read it; the periodiq loop owns the
main thread (it waits on SIGALRM), so the beat runs beside it.
"""

from __future__ import annotations

import threading

import structlog

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
        while True:
            try:
                self.heartbeat.beat()
            except Exception as exc:
                log.warning("scheduler heartbeat failed", error=str(exc))
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.heartbeat.remove()
        except Exception as exc:
            log.warning("could not remove the scheduler heartbeat", error=str(exc))
