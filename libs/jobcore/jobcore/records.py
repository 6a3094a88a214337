"""The job record as stored in Redis and as shown over HTTP."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jobcore.clock import format_ms


def _int(value: str | None) -> int | None:
    return None if value is None or value == "" else int(value)


def _json(value: str | None) -> Any:
    return None if value is None or value == "" else json.loads(value)


def stored_json(value: Any) -> str:
    """A value as a record field holds it: JSON without spaces (records stay small)."""
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class JobRecord:
    """One job as stored: times in epoch ms, payload and result decoded."""

    id: str
    type: str
    queue: str
    payload: Any
    state: str
    attempts: int
    max_attempts: int
    deliveries: int
    max_deliveries: int
    progress: int
    result: Any
    failed_reason: str | None
    last_error: str | None
    created_at: int
    processed_at: int | None
    finished_at: int | None
    next_attempt_at: int | None
    run_at: int | None
    trace_id: str
    generation: int
    backoff: dict[str, Any]

    @classmethod
    def from_hash(cls, job_id: str, fields: dict[str, str]) -> JobRecord:
        """The record stored under ``keys.job(job_id)`` (the id is the key's, not a field)."""
        return cls(
            id=job_id,
            type=fields["type"],
            queue=fields["queue"],
            payload=_json(fields.get("payload")),
            state=fields["state"],
            attempts=int(fields.get("attempts", 0)),
            max_attempts=int(fields.get("maxAttempts", 1)),
            deliveries=int(fields.get("deliveries", 0)),
            max_deliveries=int(fields.get("maxDeliveries", 1)),
            progress=int(fields.get("progress", 0)),
            result=_json(fields.get("result")),
            failed_reason=fields.get("failedReason") or None,
            last_error=fields.get("lastError") or None,
            created_at=int(fields["createdAt"]),
            processed_at=_int(fields.get("processedAt")),
            finished_at=_int(fields.get("finishedAt")),
            next_attempt_at=_int(fields.get("nextAttemptAt")),
            run_at=_int(fields.get("runAt")),
            trace_id=fields.get("traceId", ""),
            generation=int(fields.get("generation", 1)),
            backoff=_json(fields.get("backoff")) or {},
        )

    def to_api(self) -> dict[str, Any]:
        """The full record of ``GET /jobs/{id}``."""
        return {
            "jobId": self.id,
            "type": self.type,
            "queue": self.queue,
            "payload": self.payload,
            "state": self.state,
            "attempts": self.attempts,
            "maxAttempts": self.max_attempts,
            "deliveries": self.deliveries,
            "maxDeliveries": self.max_deliveries,
            "progress": self.progress,
            "result": self.result,
            "failedReason": self.failed_reason,
            "lastError": self.last_error,
            "createdAt": format_ms(self.created_at),
            "processedAt": format_ms(self.processed_at),
            "finishedAt": format_ms(self.finished_at),
            "nextAttemptAt": format_ms(self.next_attempt_at),
            "runAt": format_ms(self.run_at),
            "traceId": self.trace_id,
        }

    def to_status(self) -> dict[str, Any]:
        """The short shape of ``GET /jobs/{id}/status`` (seed 000)."""
        return {
            "jobId": self.id,
            "type": self.type,
            "state": self.state,
            "createdAt": format_ms(self.created_at),
            "processedAt": format_ms(self.processed_at),
            "failedReason": self.failed_reason,
            "attempts": self.attempts,
        }
