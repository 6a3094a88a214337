"""The limits a request must keep once it parses: sizes, ranges and counts.

Each limit is a setting (``jobcore.settings``); the submission parser, the listing
query and the OpenAPI spec all read them from one ``RequestLimits``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jobcore.errors import Problem
from jobcore.settings import Settings

#: Smallest and largest integer accepted anywhere in a payload (signed 64 bits).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
#: Most problems reported for one payload: enough to fix it, bounded for hostile input.
MAX_PROBLEMS = 20


@dataclass(frozen=True)
class RequestLimits:
    """Every limit a parsed request is checked against, taken from the settings (where each
    is declared, with its default and bounds, once)."""

    #: Longest accepted ``delaySeconds``, and furthest ``runAt`` from now, in seconds.
    max_delay_seconds: int
    #: Most attempts a submission may ask for.
    max_attempts: int
    #: Longest backoff delay a submission may ask for, in milliseconds.
    max_backoff_ms: int
    #: Most object members in one payload, counted at every depth.
    max_payload_keys: int
    #: Longest idempotency key, in characters.
    max_idempotency_key_length: int
    #: Largest page a listing may ask for.
    max_list_limit: int
    #: Deepest nesting of arrays and objects in a body.
    max_json_depth: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestLimits:
        return cls(
            max_delay_seconds=int(settings.max_delay),
            max_attempts=settings.max_attempts_limit,
            max_backoff_ms=int(settings.max_backoff * 1000),
            max_payload_keys=settings.max_payload_keys,
            max_idempotency_key_length=settings.max_idempotency_key_length,
            max_list_limit=settings.max_list_limit,
            max_json_depth=settings.max_json_depth,
        )


#: The limits of the default settings (a parser or a tool built without settings).
DEFAULT_LIMITS = RequestLimits.from_settings(Settings())


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
