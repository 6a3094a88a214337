"""Waiting out an unreachable store: back off, and say so once.

Every loop that keeps trying while Redis is down (worker presence and sweepers, record
transitions, the broker's consumers, the scheduler's heartbeat and ticks) reports its tries
to a ``StoreOutage``. The outage is logged once when it starts, then at most every
``REPORT_EVERY`` seconds with the count of failed tries, and once when it ends with its
duration; tries back off from ``FIRST_PAUSE`` doubling to ``LONGEST_PAUSE``. The process's
``jobcore_store_up`` gauge (``telemetry.metrics``) follows: 0 while any of its loops is in
an outage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import structlog

from jobcore.errors import StoreUnavailable

T = TypeVar("T")

#: First pause after a failed try, in seconds.
FIRST_PAUSE = 0.1
#: Longest pause between tries, in seconds (the pause doubles up to it).
LONGEST_PAUSE = 2.0
#: Seconds between "still unavailable" lines of one outage.
REPORT_EVERY = 30.0

log = structlog.get_logger("jobcore.outages")

_process_lock = threading.Lock()
#: Loops of this process now in an outage.
_down: set[str] = set()
#: The kind of this process (``worker``, ``scheduler``, ``api``, ``cli``) for the gauge.
_process_kind = "process"


def set_process_kind(kind: str) -> None:
    """Name this process's kind for ``jobcore_store_up{kind}`` (once, at start)."""
    global _process_kind
    _process_kind = kind
    _publish()


def store_up() -> bool:
    """Whether no loop of this process is waiting out an outage now."""
    with _process_lock:
        return not _down


def _publish() -> None:
    from jobcore.telemetry.metrics import STORE_UP

    STORE_UP.labels(kind=_process_kind).set(0 if _down else 1)


class Backoff:
    """Pauses of one waiting caller: ``FIRST_PAUSE`` doubling to ``LONGEST_PAUSE``."""

    def __init__(self, first: float = FIRST_PAUSE, longest: float = LONGEST_PAUSE) -> None:
        self.first = first
        self.longest = longest
        self._next = first

    def next(self) -> float:
        pause = self._next
        self._next = min(self._next * 2, self.longest)
        return pause

    def reset(self) -> None:
        self._next = self.first


class StoreOutage:
    """One loop's (or one family of threads') view of the store being unreachable.

    Thread-safe: the worker threads of a process share one for their transitions, so an
    outage is one line for all of them, not one per thread per try.
    """

    def __init__(
        self,
        loop: str,
        *,
        report_every: float = REPORT_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.loop = loop
        self.report_every = report_every
        self.clock = clock
        self._lock = threading.Lock()
        self._started_at: float | None = None
        self._reported_at = 0.0
        self._failures = 0

    @property
    def ongoing(self) -> bool:
        return self._started_at is not None

    def failed(self, error: BaseException) -> None:
        """A try failed: log it if it begins an outage or the last report is old."""
        now = self.clock()
        with self._lock:
            self._failures += 1
            if self._started_at is None:
                self._started_at = self._reported_at = now
                with _process_lock:
                    _down.add(self.loop)
                    _publish()
                log.warning("store unavailable", loop=self.loop, error=_short(error))
            elif now - self._reported_at >= self.report_every:
                self._reported_at = now
                log.warning(
                    "store still unavailable",
                    loop=self.loop,
                    failed_tries=self._failures,
                    seconds=round(now - self._started_at, 1),
                    error=_short(error),
                )

    def stand_down(self) -> None:
        """The loop has stopped trying (nothing left for it to do): it no longer counts as
        waiting out an outage, and says nothing (no try told it the store is back)."""
        if self._started_at is None:
            return
        with self._lock:
            self._started_at = None
            self._failures = 0
            with _process_lock:
                _down.discard(self.loop)
                _publish()

    def began(self) -> float:
        """The time a try begins, to hand to ``succeeded``."""
        return self.clock()

    def succeeded(self, began: float | None = None) -> None:
        """A try worked: end the outage, if there was one, with one line. A try that began
        (``began``) before the outage did says nothing about its end: another thread's try
        may have failed meanwhile."""
        if self._started_at is None:  # the common case, without the lock
            return
        now = self.clock()
        with self._lock:
            if self._started_at is None:
                return
            if began is not None and began < self._started_at:
                return
            log.info(
                "store available again",
                loop=self.loop,
                failed_tries=self._failures,
                seconds=round(now - self._started_at, 1),
            )
            self._started_at = None
            self._failures = 0
            with _process_lock:
                _down.discard(self.loop)
                _publish()

    def wait_out(
        self,
        action: Callable[[], T],
        *,
        stop: threading.Event | None = None,
        backoff: Backoff | None = None,
    ) -> T:
        """Run ``action`` until it does not raise ``StoreUnavailable``, backing off between
        tries; ``stop`` set ends the wait by raising the last error."""
        pauses = backoff or Backoff()
        while True:
            began = self.clock()
            try:
                result = action()
            except StoreUnavailable as exc:
                self.failed(exc)
                pause = pauses.next()
                if stop is None:
                    time.sleep(pause)
                elif stop.wait(pause):
                    raise
                continue
            self.succeeded(began)
            return result


def _short(error: BaseException) -> str:
    text = str(error)
    return text if len(text) <= 300 else text[:299] + "…"


class StoreLoop:
    """A daemon thread calling ``step`` until stopped, through store outages.

    ``step`` does one round of work and returns the pause before the next, or ``None`` when
    it had nothing to try (the loop then stands down from an outage and pauses ``idle``). A
    ``StoreUnavailable`` is an outage (one line, backing off); anything else is logged and
    the loop goes on.
    """

    def __init__(self, name: str, step: Callable[[], float | None], idle: float) -> None:
        self.name = name
        self.step = step
        self.idle = idle
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"jobcore-{self.name.replace(' ', '-')}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        outage = StoreOutage(self.name)
        backoff = Backoff()
        pause = 0.0
        while not self._stop.wait(pause):
            began = outage.began()
            try:
                found = self.step()
            except StoreUnavailable as exc:
                outage.failed(exc)
                pause = backoff.next()
                continue
            except Exception:
                log.exception("loop error", loop=self.name)
                pause = self.idle
                continue
            if found is None:
                outage.stand_down()
                pause = self.idle
                continue
            outage.succeeded(began)
            backoff.reset()
            pause = found
