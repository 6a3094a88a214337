"""Worker presence and recovery: a heartbeat per worker process, and the sweepers.

Each worker process refreshes ``keys.WORKER`` every ``heartbeat_interval``; it expires
after ``owner_ttl``. A job is ``active`` under its owner while that key lives. Sweepers
run in every worker process, but only the holder of the ``sweeper`` lease works:
- *due*: a pending job whose message should have been in a ready queue for longer than
  ``sweep_margin`` (never enqueued, or a delayed message lost with a worker's memory)
  gets a new message with a new generation;
- *orphans*: an ``active`` job whose owner's heartbeat expired goes back to ``waiting``
  with a new generation and a new message.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any, cast

import dramatiq
import structlog
from dramatiq.middleware import Middleware

from jobcore.clock import LATEST_TIME_MS, format_ms, now_ms
from jobcore.runtime import Runtime
from jobcore.store import keys
from jobcore.store.connection import store_errors

#: Jobs examined per sweep and per kind.
SWEEP_BATCH = 200
#: The sweeper lease lives this many sweep intervals, so a dead holder is replaced quickly.
LEASE_INTERVALS = 3

log = structlog.get_logger("jobcore.execution.presence")

_RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""


class Lease:
    """A named Redis lease: held by one process at a time, renewed by its holder."""

    def __init__(self, runtime: Runtime, name: str, holder: str, ttl_ms: int) -> None:
        self.client = runtime.client
        self.key = keys.lease(name)
        self.holder = holder
        self.ttl_ms = ttl_ms
        self._renew = self.client.register_script(_RENEW_LEASE)

    def acquire(self) -> bool:
        return bool(self._renew(keys=[self.key], args=[self.holder, self.ttl_ms]))


class Sweeper:
    """Finds stranded jobs and sends them again (see the module docstring)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.margin_ms = int(runtime.settings.sweep_margin * 1000)

    def sweep(self) -> int:
        store, jobs = self.runtime.store, self.runtime.jobs
        recovered = 0
        for job_id in store.overdue(now_ms() - self.margin_ms, SWEEP_BATCH):
            again = store.recover_due(job_id, self.margin_ms)
            if again:
                jobs.enqueue_again(again)
                recovered += 1
                log.warning("re-enqueued a stranded job", job_id=job_id)
        for job_id in store.active_ids(SWEEP_BATCH):
            again = store.recover_orphan(job_id)
            if again:
                jobs.enqueue_again(again)
                recovered += 1
                log.warning("recovered a job from a lost worker", job_id=job_id)
        return recovered


class Heartbeat:
    """One process's presence key (worker or scheduler), refreshed every heartbeat interval.

    ``keys.WORKER`` holds the process's description and expires after ``owner_ttl``;
    ``keys.WORKERS`` indexes live ids by last beat, so listing never scans keys.
    """

    def __init__(
        self,
        runtime: Runtime,
        kind: str,
        queues: list[str],
        in_flight: Callable[[], int] = lambda: 0,
    ) -> None:
        self.runtime = runtime
        self.kind = kind
        self.queues = queues
        self.in_flight = in_flight
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"

    def beat(self) -> None:
        settings = self.runtime.settings
        now = now_ms()
        ttl_ms = int(settings.owner_ttl * 1000)
        pipe = self.runtime.client.pipeline(transaction=False)
        pipe.hset(
            keys.worker(self.id),
            mapping={
                "id": self.id,
                "kind": self.kind,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "queues": ",".join(self.queues),
                "inFlight": self.in_flight(),
                "heartbeat": now,
            },
        )
        pipe.pexpire(keys.worker(self.id), ttl_ms)
        pipe.zadd(keys.WORKERS, {self.id: now})
        pipe.zremrangebyscore(keys.WORKERS, "-inf", now - ttl_ms)
        pipe.execute()

    def remove(self) -> None:
        pipe = self.runtime.client.pipeline(transaction=False)
        pipe.delete(keys.worker(self.id))
        pipe.zrem(keys.WORKERS, self.id)
        pipe.execute()


def live_processes(runtime: Runtime, kind: str | None = None) -> list[dict[str, Any]]:
    """Worker and scheduler processes whose heartbeat has not expired, newest beat first, as
    ``GET /workers`` and ``jobcore health`` show them (numbers as numbers, times RFC 3339)."""
    client = runtime.client
    ttl_ms = int(runtime.settings.owner_ttl * 1000)
    with store_errors():
        ids = cast(list[str], client.zrevrangebyscore(keys.WORKERS, "+inf", now_ms() - ttl_ms))
        pipe = client.pipeline(transaction=False)
        for process_id in ids:
            pipe.hgetall(keys.worker(process_id))
        found = [h for h in pipe.execute() if h] if ids else []
    return [process_view(h) for h in found if kind is None or h.get("kind") == kind]


def _whole(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def process_view(process: dict[str, str]) -> dict[str, Any]:
    """One presence hash as shown to people and programs."""
    heartbeat = _whole(process.get("heartbeat"))
    return {
        "id": process.get("id", ""),
        "kind": process.get("kind", ""),
        "host": process.get("host", ""),
        "pid": _whole(process.get("pid")),
        "queues": [q for q in process.get("queues", "").split(",") if q],
        "inFlight": _whole(process.get("inFlight")),
        "lastHeartbeat": format_ms(heartbeat) if 0 < heartbeat <= LATEST_TIME_MS else None,
    }


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

    def current_id(self) -> str:
        return self.heartbeat.id if self.heartbeat else ""

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        self.heartbeat = Heartbeat(self.runtime, "worker", self.queues, self.in_flight)
        self.heartbeat.beat()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        if self.heartbeat is None:
            self.after_process_boot(broker)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="jobcore-presence", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
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
        lease = Lease(
            self.runtime,
            "sweeper",
            self.heartbeat.id,
            int(settings.sweep_interval * LEASE_INTERVALS * 1000),
        )
        sweeper = Sweeper(self.runtime)
        next_sweep = 0.0
        while not self._stop.wait(0 if next_sweep == 0.0 else settings.heartbeat_interval):
            try:
                self.heartbeat.beat()
                now = now_ms() / 1000
                if now >= next_sweep:
                    next_sweep = now + settings.sweep_interval
                    if lease.acquire():
                        sweeper.sweep()
            except Exception as exc:
                log.warning("presence loop error", error=str(exc))
