"""A plain Dramatiq broker module with no-op actors: ``python -m dramatiq bench.bare_actors``.

The broker has the same settings as Jobcore's (see ``bench.bare_broker``) and reads
``REDIS_URL``. ``noop`` is the drained job; ``latency_probe`` records how long its message
waited, for the latency comparison only; ``sleep_probe`` records each of its starts, then
sleeps, for the crash-recovery comparison.
"""

from __future__ import annotations

import os
import time

import dramatiq

from bench.bare_broker import LATENCY_KEY, QUEUE, STARTS_KEY, bare_broker

broker = bare_broker(os.environ["REDIS_URL"])
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE)
def noop() -> None:
    """Does nothing: the bare equivalent of a ``dummy`` job with ``{}``."""


@dramatiq.actor(queue_name=QUEUE)
def latency_probe(sent_ms: int) -> None:
    broker.client.rpush(LATENCY_KEY, f"{sent_ms} {time.time_ns() // 1_000_000}")


@dramatiq.actor(queue_name=QUEUE, notify_shutdown=True)
def sleep_probe(token: str, seconds: float) -> None:
    """Pushes its start time, then sleeps in short steps (a stopping worker interrupts it)."""
    broker.client.rpush(STARTS_KEY.format(token=token), time.time_ns() // 1_000_000)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.1)
