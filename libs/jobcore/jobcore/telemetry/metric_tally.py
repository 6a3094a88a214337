"""Counts and observations made on an event loop, kept in memory and written to the metric
files once a second.

In multiprocess mode (``metrics``) every increment takes a lock and writes a double into a
memory-mapped file, and a histogram observation writes two: the API paid three such writes
per request for its request metrics. A ``Tally`` adds to plain dicts instead, and ``flush``
writes each series' total once. What a scrape shows lags by at most ``FLUSH_INTERVAL``; the
API flushes before it answers a scrape and when it stops.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from typing import Any

#: Seconds at most between a count and its write to the metric files.
FLUSH_INTERVAL = 1.0


class Tally:
    """One event loop's pending counts and observations, by metric child (a counter's or a
    histogram's ``labels(...)``). Not thread-safe: the loop's thread counts and flushes."""

    def __init__(self, interval: float = FLUSH_INTERVAL) -> None:
        self.interval = interval
        self._counts: dict[Any, float] = {}
        #: Per histogram child: the sum, then a count per bucket.
        self._observed: dict[Any, list[float]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def count(self, counter: Any, amount: float = 1.0) -> None:
        """``counter.inc(amount)``, written at the next flush."""
        counts = self._counts
        counts[counter] = counts.get(counter, 0.0) + amount
        if self._timer is None:
            self._arm()

    def observe(self, histogram: Any, value: float) -> None:
        """``histogram.observe(value)``, written at the next flush: the value counts in the
        first bucket whose upper bound is at least the value, as the histogram counts it."""
        pending = self._observed.get(histogram)
        if pending is None:
            pending = self._observed[histogram] = [0.0] * (len(histogram._upper_bounds) + 1)
        pending[0] += value
        pending[1 + bisect_left(histogram._upper_bounds, value)] += 1
        if self._timer is None:
            self._arm()

    def flush(self) -> None:
        """Write what was counted since the last flush."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        counts, self._counts = self._counts, {}
        for counter, amount in counts.items():
            counter.inc(amount)
        observed, self._observed = self._observed, {}
        for histogram, pending in observed.items():
            histogram._sum.inc(pending[0])
            for bucket, times in zip(histogram._buckets, pending[1:], strict=True):
                if times:
                    bucket.inc(times)

    def _arm(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # no loop to flush later: write now
            return
        self._timer = loop.call_later(self.interval, self.flush)
