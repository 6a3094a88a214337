"""Reads of records, histories, listings and counts, as operations (``calls.py``): each
names what it reads and turns the replies into named values."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jobcore.clock import OPTIONAL_TIME_SCHEMA, format_ms
from jobcore.errors import JobNotFound
from jobcore.model.records import JOB_SCHEMA, JobRecord
from jobcore.model.states import ALL_STATES, State
from jobcore.store import keys, scripts
from jobcore.store.calls import Operation, commands

#: Event fields holding epoch-ms times, shown as RFC 3339.
_EVENT_TIMES = ("at", "runAt", "nextAttemptAt")


_COUNT = {"type": "integer", "minimum": 0}

#: The JSON Schema of ``Page.to_api`` (``GET /jobs``, ``GET /jobs/dead``).
PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["items", "nextCursor"],
    "properties": {
        "items": {"type": "array", "items": JOB_SCHEMA},
        "nextCursor": {
            "type": ["string", "null"],
            "description": "pass as cursor for the next (older) page",
        },
    },
}
#: The JSON Schema of ``events_view`` (``GET /jobs/{id}/events``).
EVENTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["jobId", "items"],
    "properties": {
        "jobId": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["at", "event"],
                "properties": {
                    "at": {**OPTIONAL_TIME_SCHEMA, "description": "null only when undecodable"},
                    "event": {"type": "string"},
                },
            },
        },
    },
}
#: The JSON Schema of ``stats`` (``GET /jobs/stats``).
STATS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["states", "types", "queues", "delayed", "deadLetters", "total"],
    "properties": {
        "states": {"type": "object", "additionalProperties": _COUNT},
        "types": {"type": "object", "additionalProperties": _COUNT},
        "queues": {"type": "object", "additionalProperties": _COUNT},
        "delayed": _COUNT,
        "retrying": _COUNT,
        "deadLetters": _COUNT,
        "total": _COUNT,
    },
}


@dataclass(frozen=True)
class Page:
    items: list[JobRecord]
    next_cursor: str | None

    def to_api(self) -> dict[str, Any]:
        return {"items": [r.to_api() for r in self.items], "nextCursor": self.next_cursor}


def events_view(job_id: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """A job's history as ``GET /jobs/{id}/events`` shows it."""
    return {"jobId": job_id, "items": events}


def record(job_id: str) -> Operation[JobRecord]:
    """The job's record; ``JobNotFound`` when there is none."""
    (fields,) = yield commands(("HGETALL", keys.job(job_id)))
    if not fields:
        raise JobNotFound(job_id)
    return JobRecord.from_hash(job_id, fields)


def events(job_id: str) -> Operation[list[dict[str, Any]]]:
    """The job's history, oldest first, times as RFC 3339."""
    ((state, history),) = yield commands(("HMGET", keys.job(job_id), "state", "history"))
    if state is None:
        raise JobNotFound(job_id)
    return [_shown_event(line) for line in (history or "").splitlines()]


def index_page(
    state: str | None, job_type: str | None, bound: str, count: int, order: str
) -> Operation[list[tuple[str, int]]]:
    """Ids and sequence numbers from the indexes matching the filters, past ``bound``."""
    flat = yield scripts.LIST.call(
        keys={"types": keys.TYPES},
        args={
            "state": state or "",
            "job_type": job_type or "",
            "bound": bound,
            "count": count,
            "order": order,
        },
    )
    return [(flat[i], int(flat[i + 1])) for i in range(0, len(flat), 2)]


def ids_in(state: str, job_type: str | None, limit: int) -> Operation[list[str]]:
    """Oldest-first ids of jobs in ``state`` (optionally of one type), at most ``limit``."""
    pairs = yield from index_page(state, job_type, "-inf", limit, "asc")
    return [job_id for job_id, _ in pairs]


def page(
    state: str | None, job_type: str | None, limit: int, cursor: int | None
) -> Operation[Page]:
    """Newest first from the indexes matching the filters; two round trips."""
    upper = f"({cursor}" if cursor is not None else "+inf"
    pairs = yield from index_page(state, job_type, upper, limit + 1, "desc")
    shown, more = pairs[:limit], len(pairs) > limit
    hashes = (yield commands(*[("HGETALL", keys.job(j)) for j, _ in shown])) if shown else []
    items = [JobRecord.from_hash(j, h) for (j, _), h in zip(shown, hashes, strict=True) if h]
    return Page(items, str(shown[-1][1]) if more and shown else None)


def stats(job_types: Sequence[str], queues: Sequence[str]) -> Operation[dict[str, Any]]:
    """Counts per state and type, queue depths, delayed and dead letters; one round trip.

    A queue's depth is the length of its ready list. Every type in ``job_types`` is
    counted, with zeros if none was ever accepted.
    """
    flat = yield scripts.STATS.call(
        keys={"types": keys.TYPES}, rest_of_keys=tuple(keys.ready_queue(q) for q in queues)
    )
    depths = dict(zip(queues, flat[: len(queues)], strict=True))
    by_state = dict.fromkeys(ALL_STATES, 0)
    by_type = dict.fromkeys(job_types, 0)
    rest = flat[len(queues) :]
    width = 1 + len(ALL_STATES)
    for i in range(0, len(rest), width):
        counts = dict(zip(ALL_STATES, rest[i + 1 : i + width], strict=True))
        by_type[rest[i]] = sum(counts.values())
        for state, count in counts.items():
            by_state[state] += count
    return {
        "states": by_state,
        "types": by_type,
        "queues": depths,
        "delayed": by_state[State.DELAYED],
        "retrying": by_state[State.RETRYING],
        "deadLetters": by_state[State.FAILED],
        "total": sum(by_state.values()),
    }


def ready_depth(queue: str) -> Operation[int]:
    """How many messages wait in ``queue``'s ready list."""
    (depth,) = yield commands(("LLEN", keys.ready_queue(queue)))
    return int(depth)


def ping() -> Operation[bool]:
    (answer,) = yield commands(("PING",))
    return bool(answer)


def _shown_event(line: str) -> dict[str, Any]:
    """One history line as ``GET /jobs/{id}/events`` shows it; a damaged line is shown as an
    ``undecodable`` event instead of failing the whole history."""
    try:
        event = json.loads(line)
        if not isinstance(event, dict):
            raise ValueError("not an object")
        for name in _EVENT_TIMES:
            if name in event:
                event[name] = format_ms(int(event[name]))
    except (ValueError, TypeError, OverflowError, OSError):
        return {"at": None, "event": "undecodable", "raw": line[:200]}
    return dict(event)
