"""Process presence in Redis: each worker or scheduler process keeps a key that expires
after the owner TTL unless refreshed, indexed by last beat so listing never scans keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobcore.store import keys
from jobcore.store.calls import Operation, commands


def beat(process_id: str, description: Mapping[str, Any], now: int, ttl_ms: int) -> Operation[None]:
    """Refresh one process's presence (and forget processes silent past the TTL)."""
    flat = [item for pair in description.items() for item in pair]
    yield commands(
        ("HSET", keys.worker(process_id), *flat),
        ("PEXPIRE", keys.worker(process_id), ttl_ms),
        ("ZADD", keys.WORKERS, now, process_id),
        ("ZREMRANGEBYSCORE", keys.WORKERS, "-inf", now - ttl_ms),
    )


def remove(process_id: str) -> Operation[None]:
    yield commands(("DEL", keys.worker(process_id)), ("ZREM", keys.WORKERS, process_id))


def live(now: int, ttl_ms: int) -> Operation[list[dict[str, str]]]:
    """Each process that beat within the TTL, newest beat first, as stored."""
    (ids,) = yield commands(("ZREVRANGEBYSCORE", keys.WORKERS, "+inf", now - ttl_ms))
    if not ids:
        return []
    found = yield commands(*[("HGETALL", keys.worker(process_id)) for process_id in ids])
    return [h for h in found if h]


def alive(process_id: str) -> Operation[bool]:
    (exists,) = yield commands(("EXISTS", keys.worker(process_id)))
    return bool(exists)
