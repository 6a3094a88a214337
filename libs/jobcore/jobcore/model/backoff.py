"""Retry policy: how many attempts, and how long to wait before each retry.

Exact delays are ours: Dramatiq's ``Retries`` always jitters, so Jobcore schedules its
own retries with this policy (resolved: submission override → job type → default).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any, Literal

from jobcore.model.records import stored_json

#: Attempts when neither the submission nor the job type says otherwise.
DEFAULT_MAX_ATTEMPTS = 3
#: Extra deliveries beyond ``maxAttempts`` before a job that keeps crashing its worker fails.
DELIVERY_ALLOWANCE = 5


@dataclass(frozen=True)
class Backoff:
    """Delay before retry ``n`` (1 = the first retry), in milliseconds."""

    type: Literal["fixed", "exponential"] = "exponential"
    delay_ms: int = 1000
    max_delay_ms: int | None = 60_000
    #: Fraction of the delay that may be taken off at random (0 = exact, 1 = full jitter).
    jitter: float = 0.0

    def delay_for(self, retry_number: int, rng: random.Random | None = None) -> int:
        if self.type == "fixed":
            delay = self.delay_ms
        else:
            delay = self.delay_ms * 2 ** max(retry_number - 1, 0)
        if self.max_delay_ms is not None:
            delay = min(delay, self.max_delay_ms)
        if self.jitter:
            delay -= int(delay * self.jitter * (rng or random).random())
        return int(delay)

    def to_json(self) -> dict[str, Any]:
        """The API's spelling: ``{"type", "delayMs", "maxDelayMs", "jitter"}``."""
        return {
            "type": self.type,
            "delayMs": self.delay_ms,
            "maxDelayMs": self.max_delay_ms,
            "jitter": self.jitter,
        }

    @cached_property
    def stored(self) -> str:
        """``to_json`` as a record stores it, made once per policy: a job type's own policy,
        which most submissions keep, is serialised once, not per job."""
        return stored_json(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Backoff:
        return cls(
            type=data.get("type", "exponential"),
            delay_ms=int(data.get("delayMs", 1000)),
            max_delay_ms=data.get("maxDelayMs"),
            jitter=float(data.get("jitter", 0.0) or 0.0),
        )

    @staticmethod
    @lru_cache(maxsize=256)
    def from_stored(text: str) -> Backoff:
        """The policy a record stores (``stored``); text that is not a policy gives the
        default. Remembered by text: most jobs share their type's few policies, and a
        ``Backoff`` never changes."""
        try:
            data = json.loads(text)
            return Backoff.from_json(data if isinstance(data, dict) else {})
        except (ValueError, TypeError):
            # A damaged record's policy: the default, rather than a job that cannot start.
            return Backoff.from_json({})

    def overridden_by(self, data: dict[str, Any] | None) -> Backoff:
        """This policy with the fields a submission gave replaced."""
        if not data:
            return self
        jitter = data.get("jitter", self.jitter)
        if isinstance(jitter, bool):
            jitter = 1.0 if jitter else 0.0
        return replace(
            self,
            type=data.get("type", self.type),
            delay_ms=int(data.get("delayMs", self.delay_ms)),
            max_delay_ms=data.get("maxDelayMs", self.max_delay_ms),
            jitter=float(jitter),
        )


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff: Backoff = field(default_factory=Backoff)

    @property
    def max_deliveries(self) -> int:
        return self.max_attempts + DELIVERY_ALLOWANCE
