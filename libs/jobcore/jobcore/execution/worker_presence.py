"""This worker process's presence: its heartbeat, and the sweepers and the due set's promoter
under a lease.

A Dramatiq middleware: from the worker's boot to its shutdown a thread refreshes the
process's heartbeat (``jobcore.presence``) every ``heartbeat_interval`` and, every
``sweep_interval``, renews the ``sweeper`` lease and, while this process holds it, runs the
sweepers (``recovery.py``); the promoter (``promoter.py``) runs on its own thread while the
lease is held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
import structlog
from dramatiq.middleware import Middleware

from jobcore.broker import JobcoreRedisBroker
from jobcore.errors import StoreUnavailable
from jobcore.execution.promoter import DuePromoter
from jobcore.execution.recovery import Sweeper
from jobcore.outages import Backoff, StoreOutage, set_process_kind
from jobcore.presence import Heartbeat
from jobcore.runtime import Runtime
from jobcore.store import lease

#: The lease the sweepers run under.
SWEEPER_LEASE = "sweeper"
#: The sweeper lease lives this many sweep intervals, so a dead holder is replaced quickly.
LEASE_INTERVALS = 3

log = structlog.get_logger("jobcore.execution.worker_presence")


class WorkerPresence(Middleware):
    """Heartbeat of this worker process, plus the sweepers under a lease."""

    def __init__(
        self, runtime: Runtime, queues: list[str], in_flight: Callable[[], int] = lambda: 0
    ) -> None:
        self.runtime = runtime
        self.queues = queues
        self.in_flight = in_flight
        self.heartbeat: Heartbeat | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._holds_lease = False
        self.promoter = DuePromoter(runtime.store, lambda: self._holds_lease)

    def current_id(self) -> str:
        return self.heartbeat.id if self.heartbeat else ""

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        set_process_kind("worker")
        self.heartbeat = Heartbeat(self.runtime, "worker", self.queues, self.in_flight)
        if isinstance(broker, JobcoreRedisBroker):
            # Dramatiq's heartbeat and fetched-message sets carry the same id as the records'
            # owner, so a dead process's messages can be released with its jobs.
            broker.use_worker_id(self.heartbeat.id)
        self.heartbeat.beat()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        if self.heartbeat is None:
            self.after_process_boot(broker)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="jobcore-presence", daemon=True)
        self._thread.start()
        self.promoter.start()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        # The heartbeat beats until every job of this process has ended (a shutdown waits
        # for them up to JOBCORE_WORKER_SHUTDOWN_TIMEOUT, longer than the owner TTL: its jobs
        # must not look lost meanwhile), and the promoter sends what the shutdown requeued.
        self._stop.set()
        self.promoter.stop()
        if self._thread:
            self._thread.join(timeout=5)
        try:
            if self.heartbeat:
                self.heartbeat.remove()
        except Exception:
            log.warning("could not remove the worker heartbeat", worker_id=self.current_id())

    def _run(self) -> None:
        assert self.heartbeat is not None
        settings = self.runtime.settings
        lease_ms = int(settings.sweep_interval * LEASE_INTERVALS * 1000)
        sweeper = Sweeper(self.runtime)
        outage = StoreOutage("presence and sweepers")
        backoff = Backoff()
        next_sweep = 0.0
        pause = 0.0
        while not self._stop.wait(pause):
            pause = settings.heartbeat_interval
            began = outage.began()
            try:
                self.heartbeat.beat()
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + settings.sweep_interval
                    holder = self.heartbeat.id
                    self._holds_lease = self.runtime.executor.run(
                        lease.renew(SWEEPER_LEASE, holder, lease_ms)
                    )
                    if self._holds_lease:
                        sweeper.sweep()
            except StoreUnavailable as exc:
                # Try again sooner than a beat at first, then back off (one line per outage).
                outage.failed(exc)
                pause = min(backoff.next(), settings.heartbeat_interval)
                continue
            except Exception:
                log.exception("presence loop error", worker_id=self.heartbeat.id)
                continue
            outage.succeeded(began)
            backoff.reset()
