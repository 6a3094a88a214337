"""Submit→start on an idle system: one job every few seconds to warm workers that have
nothing else to do, Jobcore beside bare Dramatiq.

The jobs are sent and timed as the latency step of ``bench.queue_phases`` does at 200/s
(``QueueBench.latency``), only slowly enough that every worker is idle when a job arrives:
what is measured is how quickly an idle consumer notices new work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.queue_phases import QueueBench
from jobcore.store.record_store import RecordStore

#: Jobs run once the workers poll, before anything is timed (imports, connections).
WARMUP_JOBS = 20


def record_timings(store: RecordStore) -> Callable[[list[str]], tuple[list[int], list[int]]]:
    """Submit→start and submit→finish of Jobcore jobs, read from their records."""

    def read(ids: list[str]) -> tuple[list[int], list[int]]:
        to_start, to_finish = [], []
        for job_id in ids:
            record = store.get(job_id)
            if record.processed_at is not None:
                to_start.append(record.processed_at - record.created_at)
            if record.finished_at is not None:
                to_finish.append(record.finished_at - record.created_at)
        return to_start, to_finish

    return read


def idle_latency(
    bench: QueueBench,
    jobs: int,
    interval: float,
    timings: Callable[[list[str]], Any],
) -> dict[str, Any]:
    """``jobs`` jobs, one every ``interval`` seconds, on ``bench``'s running workers."""
    bench.warm_up(WARMUP_JOBS)
    # Long enough for every consumer to fall back to its idle polling.
    time.sleep(interval)
    rate = 1 / interval
    # Half an interval of slack: ``latency`` sends int(rate * seconds) jobs.
    bench.latency(rate, (jobs + 0.5) * interval, timings)
    return dict(bench.results["latency"], interval_s=interval)
