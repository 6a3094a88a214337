"""Backpressure on submission: refuse new work for a queue that is already too deep."""

from __future__ import annotations

import threading
import time

from jobcore.errors import QueueFull
from jobcore.settings import Settings
from jobcore.store import queries
from jobcore.store.calls import Operation


class QueueAdmission:
    """Refuses new work for a queue deeper than ``max_depth`` (``QueueFull``, HTTP 503).

    The depth is one LLEN of the broker's ready list, remembered for ``cache_seconds`` so
    the submit path pays for it at most once per queue per interval, per process.
    """

    def __init__(self, max_depth: int, cache_seconds: float) -> None:
        self.max_depth = max_depth
        self.cache_seconds = cache_seconds
        self._depths: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> QueueAdmission:
        return cls(settings.max_queue_depth, settings.queue_depth_cache)

    def depth(self, queue: str) -> Operation[int]:
        """The queue's depth: remembered, or read (one round trip) and remembered."""
        now = time.monotonic()
        with self._lock:
            cached = self._depths.get(queue)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        depth = yield from queries.ready_depth(queue)
        with self._lock:
            self._depths[queue] = (now, depth)
        return depth

    def check(self, queue: str) -> Operation[None]:
        """Raise ``QueueFull`` when ``queue`` holds ``max_depth`` or more ready messages."""
        if self.max_depth and (yield from self.depth(queue)) >= self.max_depth:
            raise QueueFull(queue, self.max_depth)
