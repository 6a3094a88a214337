"""The Redis side of the side-effect guard: one reservation per (job, effect) in the job's
effects hash, taken with ``HSETNX`` (``execution.effects`` decides what they mean)."""

from __future__ import annotations

import json
from typing import Any

from jobcore.store import keys
from jobcore.store.calls import Operation, commands, replicated


def reserve(job_id: str, effect: str, reservation: dict[str, Any]) -> Operation[bool]:
    """Take the reservation unless one exists, confirmed by the replicas before the effect
    may run; whether it is this reservation's: taken now, or by an earlier try of it (same
    ``token``) whose confirmation failed."""
    key = keys.job_effects(job_id)
    taken, found = yield replicated(
        commands(("HSETNX", key, effect, json.dumps(reservation)), ("HGET", key, effect))
    )
    if taken:
        return True
    try:
        existing = json.loads(found) if found else {}
    except ValueError:
        return False
    return isinstance(existing, dict) and existing.get("token") == reservation.get("token")


def record(job_id: str, effect: str, reservation: dict[str, Any]) -> Operation[None]:
    """Replace the reservation (the effect is done, or its outcome is ambiguous)."""
    yield commands(("HSET", keys.job_effects(job_id), effect, json.dumps(reservation)))


def release(job_id: str, effect: str) -> Operation[None]:
    """Drop the reservation: the effect definitely did not happen."""
    yield commands(("HDEL", keys.job_effects(job_id), effect))


def read(job_id: str, effect: str) -> Operation[dict[str, Any] | None]:
    (raw,) = yield commands(("HGET", keys.job_effects(job_id), effect))
    return json.loads(raw) if raw else None
