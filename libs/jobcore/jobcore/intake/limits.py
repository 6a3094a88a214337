"""The limits a request must keep once it parses: sizes, ranges and counts.

Each limit is a setting (``jobcore.settings``); the submission parser, the listing
query and the OpenAPI spec all read them from one ``RequestLimits``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jobcore.errors import ConfigurationError, Problem
from jobcore.settings import Settings

#: Smallest and largest integer accepted anywhere in a payload (signed 64 bits).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: Dramatiq's Redis broker refuses delays of 7 days or more; one hour of slack below that.
DRAMATIQ_MAX_DELAY_SECONDS = 7 * 86400 - 3600
#: Most problems reported for one payload: enough to fix it, bounded for hostile input.
MAX_PROBLEMS = 20


@dataclass(frozen=True)
class RequestLimits:
    """Every limit a parsed request is checked against; built from settings."""

    #: Longest accepted ``delaySeconds``, and furthest ``runAt`` from now, in seconds.
    max_delay_seconds: int = DRAMATIQ_MAX_DELAY_SECONDS
    #: Most attempts a submission may ask for.
    max_attempts: int = 100
    #: Longest backoff delay a submission may ask for, in milliseconds.
    max_backoff_ms: int = 86_400_000
    #: Most object members in one payload, counted at every depth.
    max_payload_keys: int = 1000
    #: Longest idempotency key, in characters.
    max_idempotency_key_length: int = 255
    #: Largest page a listing may ask for.
    max_list_limit: int = 500

    def __post_init__(self) -> None:
        if self.max_delay_seconds > DRAMATIQ_MAX_DELAY_SECONDS:
            raise ConfigurationError(
                f"JOBCORE_MAX_DELAY must be at most {DRAMATIQ_MAX_DELAY_SECONDS} s "
                "(the broker refuses delays of 7 days or more)"
            )
        for name in ("max_attempts", "max_payload_keys", "max_list_limit"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1")
        if not 1 <= self.max_idempotency_key_length <= 4096:
            raise ConfigurationError("the idempotency key length limit must be 1 to 4096")

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestLimits:
        return cls(
            max_delay_seconds=int(settings.max_delay),
            max_attempts=settings.max_attempts_limit,
            max_backoff_ms=int(settings.max_backoff * 1000),
            max_payload_keys=settings.max_payload_keys,
            max_idempotency_key_length=settings.max_idempotency_key_length,
            max_list_limit=settings.max_list_limit,
        )


def _walk(value: Any, pointer: str) -> Iterator[tuple[str, Any]]:
    """Every (pointer, value) under ``value``, depth first, without recursion."""
    stack = [(pointer, value)]
    while stack:
        here, item = stack.pop()
        yield here, item
        if isinstance(item, dict):
            for key, child in item.items():
                escaped = str(key).replace("~", "~0").replace("/", "~1")
                stack.append((f"{here}/{escaped}", child))
        elif isinstance(item, list):
            stack.extend((f"{here}/{i}", child) for i, child in enumerate(item))


def payload_problems(payload: Any, limits: RequestLimits, base: str = "/payload") -> list[Problem]:
    """Problems with a payload that no job type's schema is asked to catch: key count and
    integers outside 64 bits (which other languages' clients and workers cannot hold)."""
    problems: list[Problem] = []
    members = 0
    for pointer, value in _walk(payload, base):
        if isinstance(value, dict):
            members += len(value)
        elif isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            problems.append(Problem(pointer, "integers must fit in 64 bits (signed)"))
    if members > limits.max_payload_keys:
        problems.append(
            Problem(
                base,
                f"the payload has {members} keys; the limit is {limits.max_payload_keys}",
            )
        )
    return problems[:MAX_PROBLEMS]
