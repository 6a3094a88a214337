"""Waits with a deadline: a bench step that never happens ends, and says so, instead of
hanging the run."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Seconds between two looks at what is awaited.
POLL_INTERVAL = 0.05


class TimedOut(RuntimeError):
    """What was awaited did not happen before the deadline."""


def wait_for(
    what: str,
    found: Callable[[], T | None],
    timeout: float,
    *,
    alive: Callable[[], None] = lambda: None,
    interval: float = POLL_INTERVAL,
) -> T:
    """``found()``'s first truthy value, looked for until ``timeout`` seconds have passed.

    ``alive`` is called between looks and may raise (a process it watches has exited).
    Raises ``TimedOut`` naming ``what`` once the deadline has passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = found()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimedOut(f"{what}: not seen in {timeout:g} s")
        alive()
        time.sleep(interval)
