"""The due set's promoter: while this worker process holds the sweeper lease, a thread sends
the message of each job whose time in the due set has come (a delayed job's ``runAt``, a
retry's backoff; ``lua/promote.lua``). It wakes at the next due time, and at least every
``PROMOTE_INTERVAL``, so a due job reaches its ready queue within about that much."""

from __future__ import annotations

from collections.abc import Callable

from jobcore.clock import now_ms
from jobcore.outages import StoreLoop
from jobcore.store.record_store import RecordStore

#: The longest pause between two passes, in seconds.
PROMOTE_INTERVAL = 0.1
#: Most jobs one pass sends; a full pass is followed by another at once.
PROMOTE_BATCH = 500


class DuePromoter(StoreLoop):
    """Sends due jobs' messages while ``holds_lease()`` says this process is the one to."""

    def __init__(self, store: RecordStore, holds_lease: Callable[[], bool]) -> None:
        super().__init__("due promoter", self._promote, idle=PROMOTE_INTERVAL)
        self.store = store
        self.holds_lease = holds_lease

    def _promote(self) -> float | None:
        if not self.holds_lease():
            return None  # another process promotes now
        promoted = self.store.promote(PROMOTE_BATCH)
        if promoted.count >= PROMOTE_BATCH:
            return 0.0
        if promoted.next_due is None:
            return PROMOTE_INTERVAL
        return min(PROMOTE_INTERVAL, max(0.0, (promoted.next_due - now_ms()) / 1000))
