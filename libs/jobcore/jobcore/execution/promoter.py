"""The due set's promoter: while this worker process holds the sweeper lease, a thread sends
the message of each job whose time in the due set has come (a delayed job's ``runAt``, a
retry's backoff; ``lua/promote.lua``). It wakes at the next due time, and at least every
``PROMOTE_INTERVAL``, so a due job reaches its ready queue within about that much."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from jobcore.clock import now_ms
from jobcore.errors import StoreUnavailable
from jobcore.outages import Backoff, StoreOutage
from jobcore.store.record_store import RecordStore

#: The longest pause between two passes, in seconds.
PROMOTE_INTERVAL = 0.1
#: Most jobs one pass sends; a full pass is followed by another at once.
PROMOTE_BATCH = 500

log = structlog.get_logger("jobcore.execution.promoter")


class DuePromoter:
    """Sends due jobs' messages while ``holds_lease()`` says this process is the one to."""

    def __init__(self, store: RecordStore, holds_lease: Callable[[], bool]) -> None:
        self.store = store
        self.holds_lease = holds_lease
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="jobcore-promoter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        outage = StoreOutage("due promoter")
        backoff = Backoff()
        pause = 0.0
        while not self._stop.wait(pause):
            pause = PROMOTE_INTERVAL
            if not self.holds_lease():
                outage.stand_down()  # another process promotes now
                continue
            began = outage.began()
            try:
                promoted = self.store.promote(PROMOTE_BATCH)
            except StoreUnavailable as exc:
                outage.failed(exc)
                pause = backoff.next()
                continue
            except Exception:
                log.exception("due promoter error")
                continue
            outage.succeeded(began)
            backoff.reset()
            if promoted.count >= PROMOTE_BATCH:
                pause = 0.0
            elif promoted.next_due is not None:
                pause = min(PROMOTE_INTERVAL, max(0.0, (promoted.next_due - now_ms()) / 1000))
