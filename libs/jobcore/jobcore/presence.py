"""Process presence: each worker and scheduler process announces itself in Redis and
refreshes it every ``heartbeat_interval``; the key expires after ``owner_ttl``. A job is
``active`` under its owner while the owner's key lives. ``GET /workers`` and ``jobcore
health`` read the live processes."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from typing import Any

from jobcore.clock import LATEST_TIME_MS, OPTIONAL_TIME_SCHEMA, format_ms, now_ms
from jobcore.runtime import Runtime
from jobcore.settings import Settings
from jobcore.store import heartbeats
from jobcore.store.calls import Operation

#: Set by the ``jobcore-worker`` supervisor for each process it starts: the process's
#: presence id, so the supervisor can release that process's jobs the moment it dies.
PROCESS_ID_VAR = "JOBCORE_PROCESS_ID"


def new_process_id(label: str = "") -> str:
    """A presence id: host, process (or ``label``) and a random part."""
    return f"{socket.gethostname()}-{label or os.getpid()}-{uuid.uuid4().hex[:6]}"


class Heartbeat:
    """One process's presence (worker or scheduler)."""

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
        self.id = os.environ.get(PROCESS_ID_VAR) or new_process_id()

    def beat(self) -> None:
        now = now_ms()
        description = {
            "id": self.id,
            "kind": self.kind,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": ",".join(self.queues),
            "inFlight": self.in_flight(),
            "heartbeat": now,
        }
        ttl_ms = int(self.runtime.settings.owner_ttl * 1000)
        self.runtime.executor.run(heartbeats.beat(self.id, description, now, ttl_ms))

    def remove(self) -> None:
        self.runtime.executor.run(heartbeats.remove(self.id))


def live(settings: Settings, kind: str | None = None) -> Operation[list[dict[str, Any]]]:
    """Worker and scheduler processes whose heartbeat has not expired, newest beat first, as
    ``GET /workers`` and ``jobcore health`` show them (numbers as numbers, times RFC 3339)."""
    ttl_ms = int(settings.owner_ttl * 1000)
    found = yield from heartbeats.live(now_ms(), ttl_ms)
    return [process_view(h) for h in found if kind is None or h.get("kind") == kind]


def live_processes(runtime: Runtime, kind: str | None = None) -> list[dict[str, Any]]:
    """``live`` read now."""
    return runtime.executor.run(live(runtime.settings, kind))


#: The JSON Schema of ``process_view`` (an item of ``GET /workers``).
PROCESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "kind": {"type": "string"},
        "host": {"type": "string"},
        "pid": {"type": "integer"},
        "queues": {"type": "array", "items": {"type": "string"}},
        "inFlight": {"type": "integer", "minimum": 0},
        "lastHeartbeat": OPTIONAL_TIME_SCHEMA,
    },
}


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
