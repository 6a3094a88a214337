"""The side-effect guard: each external effect of a job happens at most once.

A reservation per (job, effect) is taken with ``HSETNX`` in the job's effects hash (kept
as long as the record) before the effect runs; with ``JOBCORE_MIN_REPLICAS_ACK`` the effect
waits until replicas confirm the reservation (a failover must not forget it), trying again
through outages: a try that finds its own reservation (its ``token``) goes on with it.

- reserved now → run it; success records the outcome (``done``); a definite error
  releases the reservation so a retry may try again; an ambiguous error (the effect may
  have happened: a timeout after the request was sent) marks it ``ambiguous``;
- already ``done`` → the recorded outcome is reused, the effect is not repeated;
- found ``pending`` (a worker died inside the effect) or ``ambiguous`` → not repeated:
  ``HumanCheckRequired`` fails the job with a reason asking a human to check, who may
  retry it with ``effects: reset``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar, cast

from jobcore.clock import now_ms
from jobcore.errors import JobcoreError
from jobcore.outages import StoreOutage
from jobcore.store import effect_reservations
from jobcore.store.executor import Executor

T = TypeVar("T")

#: Prefix of every failure reason that asks a human to check an effect.
HUMAN_CHECK_PREFIX = "needs a human check"


#: Reservations of this process waiting out an outage or their replicas' confirmation.
_RESERVATIONS = StoreOutage("effect reservations")


class HumanCheckRequired(JobcoreError):
    """Retrying could repeat an external effect: the job fails now and asks a human."""


class EffectGuard:
    """Reservations for one job's effects."""

    def __init__(
        self,
        executor: Executor,
        job_id: str,
        attempt: int,
        before_first: Callable[[], None] | None = None,
    ) -> None:
        self.executor = executor
        self.job_id = job_id
        self.attempt = attempt
        #: Called once before the first reservation (the worker records the attempt as
        #: begun there, so a cancel cannot slip in between; it raises if one came first).
        self.before_first = before_first

    def run_once(
        self,
        name: str,
        action: Callable[[], T],
        is_ambiguous: Callable[[BaseException], bool] = lambda exc: False,
    ) -> T:
        """Run ``action`` unless this effect already ran (or may have) for this job."""
        if self.before_first is not None:
            before_first, self.before_first = self.before_first, None
            before_first()
        pending = {
            "status": "pending",
            "attempt": self.attempt,
            "at": now_ms(),
            "token": uuid.uuid4().hex,
        }
        reserved = _RESERVATIONS.wait_out(
            lambda: self.executor.run(effect_reservations.reserve(self.job_id, name, pending))
        )
        if not reserved:
            return cast(T, self._reuse(name))
        try:
            outcome = action()
        except BaseException as exc:
            if is_ambiguous(exc):
                self._record(
                    name,
                    {
                        "status": "ambiguous",
                        "attempt": self.attempt,
                        "error": f"{type(exc).__name__}: {exc}"[:500],
                    },
                )
                raise HumanCheckRequired(
                    f"{HUMAN_CHECK_PREFIX}: effect {name!r} may have happened "
                    f"({type(exc).__name__}: {exc}); check, then retry with effects=reset "
                    "to run it again or effects=keep to fail fast"
                ) from exc
            self.executor.run(effect_reservations.release(self.job_id, name))
            raise
        self._record(name, {"status": "done", "attempt": self.attempt, "outcome": outcome})
        return outcome

    def _record(self, name: str, reservation: dict[str, Any]) -> None:
        reservation["at"] = now_ms()
        self.executor.run(effect_reservations.record(self.job_id, name, reservation))

    def _reuse(self, name: str) -> Any:
        reservation = self.executor.run(effect_reservations.read(self.job_id, name)) or {
            "status": "pending"
        }
        if reservation["status"] == "done":
            return reservation.get("outcome")
        raise HumanCheckRequired(
            f"{HUMAN_CHECK_PREFIX}: effect {name!r} was started in attempt "
            f"{reservation.get('attempt', '?')} and never finished "
            f"({reservation['status']}); it may have happened. Check, then retry with "
            "effects=reset to run it again"
        )
