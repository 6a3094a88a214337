"""The job record as stored in Redis and as shown over HTTP."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import structlog

from jobcore import json_text
from jobcore.clock import LATEST_TIME_MS, OPTIONAL_TIME_SCHEMA, TIME_SCHEMA, format_ms
from jobcore.errors import UnstorableResult
from jobcore.model.states import ALL_STATES

#: How many undecodable records are remembered, so each is logged once, not per read.
LOGGED_UNDECODABLE_MAX = 1000

log = structlog.get_logger("jobcore.model.records")


#: Encoders built once (``json.dumps`` with any option builds a new encoder per call); each
#: gives ``json.dumps``'s text for its options.
_STORED = json.JSONEncoder(separators=(",", ":"))
_RESULT = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def stored_json(value: Any) -> str:
    """A value as a record field holds it: JSON without spaces (records stay small)."""
    return _STORED.encode(value)


def result_json(value: Any) -> str:
    """What a job returned, as its record holds it: strict JSON, so every reader can parse
    it; ``UnstorableResult`` for a value JSON has no type for, NaN or an infinity."""
    try:
        return _RESULT.encode(value)
    except (TypeError, ValueError) as exc:
        raise UnstorableResult(
            f"the job returned a value JSON cannot hold ({exc}); return dicts, lists, "
            "strings, finite numbers, booleans or None"
        ) from exc


def payload_json(payload: Any, *, floats: bool = True) -> str:
    """A payload as its record holds it: compact, UTF-8, keys in the order submitted (job
    code sees them in that order; a CSV export keeps its columns). Payloads come from the
    strict JSON parser, so they hold no lone surrogates. ``floats=False``: it holds none."""
    return json_text.compact(payload, floats=floats)


class _FieldReader:
    """Reads a record's fields leniently: a field that cannot be decoded gets its default and
    is named in ``errors``, so one damaged record never turns a read into an error."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        self.errors: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        value = self.fields.get(name)
        if value is None:
            if default == "" and name in _REQUIRED:
                self.errors.append(name)
            return default
        return value

    def integer(self, name: str, default: int | None) -> int | None:
        value = self.fields.get(name)
        if value is None or value == "":
            if name in _REQUIRED:
                self.errors.append(name)
            return default
        try:
            return int(value)
        except ValueError:
            pass
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if number.is_integer():
            return int(number)
        self.errors.append(name)
        return default

    def time(self, name: str, default: int | None) -> int | None:
        """An epoch-ms time that RFC 3339 can show (years 1970 to 9999)."""
        value = self.integer(name, default)
        if value is not None and not 0 <= value <= LATEST_TIME_MS:
            self.errors.append(name)
            return default
        return value

    def json(self, name: str) -> Any:
        value = self.fields.get(name)
        if value is None or value == "":
            return None
        try:
            # Jobcore writes strict JSON: NaN or a number overflowing to infinity is damage.
            return json.loads(
                value,
                parse_constant=json_text.refuse_constant,
                parse_float=json_text.finite_float,
            )
        except ValueError:
            self.errors.append(name)
            return None


#: Fields every record is written with; a record without one is reported as damaged.
_REQUIRED = frozenset({"type", "queue", "state", "createdAt"})
_logged: OrderedDict[str, None] = OrderedDict()
_logged_lock = threading.Lock()


def _report_undecodable(job_id: str, errors: list[str]) -> None:
    """Log a damaged record once (per process, for the last ``LOGGED_UNDECODABLE_MAX``)."""
    with _logged_lock:
        if job_id in _logged:
            return
        _logged[job_id] = None
        if len(_logged) > LOGGED_UNDECODABLE_MAX:
            _logged.popitem(last=False)
    log.error("job record could not be fully decoded", job_id=job_id, fields=errors)


_COUNT = {"type": "integer", "minimum": 0}
#: Present only on a record Redis holds damaged: the fields that could not be read.
_RECORD_ERRORS = {
    "type": "array",
    "items": {"type": "string"},
    "description": "present only when the stored record is damaged: the fields that could "
    "not be read (shown with their defaults)",
}
_STATE = {"type": "string", "enum": list(ALL_STATES)}
_JOB_ID = {"type": "string", "description": "opaque, URL-safe"}

#: The JSON Schema of ``JobRecord.to_api`` (``GET /jobs/{id}``).
JOB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "jobId",
        "type",
        "queue",
        "payload",
        "state",
        "attempts",
        "maxAttempts",
        "deliveries",
        "progress",
        "result",
        "failedReason",
        "createdAt",
        "processedAt",
        "finishedAt",
        "nextAttemptAt",
        "traceId",
    ],
    "properties": {
        "jobId": _JOB_ID,
        "type": {"type": "string"},
        "queue": {"type": "string"},
        "payload": {"type": "object"},
        "state": _STATE,
        "attempts": {**_COUNT, "description": "attempts started, the running one included"},
        "maxAttempts": {"type": "integer", "minimum": 1},
        "deliveries": _COUNT,
        "maxDeliveries": {"type": "integer", "minimum": 1},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "result": {"description": "what the job returned; null until completed"},
        "failedReason": {"type": ["string", "null"]},
        "lastError": {"type": ["string", "null"]},
        "createdAt": TIME_SCHEMA,
        "processedAt": OPTIONAL_TIME_SCHEMA,
        "finishedAt": OPTIONAL_TIME_SCHEMA,
        "nextAttemptAt": OPTIONAL_TIME_SCHEMA,
        "runAt": OPTIONAL_TIME_SCHEMA,
        "traceId": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "recordErrors": _RECORD_ERRORS,
    },
}
#: The JSON Schema of ``JobRecord.to_status`` (``GET /jobs/{id}/status``).
JOB_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["jobId", "type", "state", "createdAt", "processedAt", "failedReason", "attempts"],
    "properties": {
        "jobId": _JOB_ID,
        "type": {"type": "string"},
        "state": _STATE,
        "createdAt": TIME_SCHEMA,
        "processedAt": OPTIONAL_TIME_SCHEMA,
        "failedReason": {"type": ["string", "null"]},
        "attempts": _COUNT,
        "recordErrors": _RECORD_ERRORS,
    },
}


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
    #: Fields of the stored record that could not be decoded (shown as ``recordErrors``).
    decode_errors: tuple[str, ...] = ()

    @classmethod
    def from_hash(cls, job_id: str, fields: dict[str, str]) -> JobRecord:
        """The record stored under ``keys.job(job_id)`` (the id is the key's, not a field).

        Never raises: a field that cannot be decoded takes its default and is listed in
        ``decode_errors`` (and logged once), so listings that include a damaged record
        still answer.
        """
        read = _FieldReader(fields)
        payload = read.json("payload")
        backoff = read.json("backoff")
        record = cls(
            id=job_id,
            type=read.text("type"),
            queue=read.text("queue"),
            payload=payload if isinstance(payload, dict) else {},
            state=read.text("state"),
            attempts=read.integer("attempts", 0) or 0,
            max_attempts=read.integer("maxAttempts", 1) or 1,
            deliveries=read.integer("deliveries", 0) or 0,
            max_deliveries=read.integer("maxDeliveries", 1) or 1,
            progress=min(max(read.integer("progress", 0) or 0, 0), 100),
            result=read.json("result"),
            failed_reason=fields.get("failedReason") or None,
            last_error=fields.get("lastError") or None,
            created_at=read.time("createdAt", 0) or 0,
            processed_at=read.time("processedAt", None),
            finished_at=read.time("finishedAt", None),
            next_attempt_at=read.time("nextAttemptAt", None),
            run_at=read.time("runAt", None),
            trace_id=fields.get("traceId", ""),
            generation=read.integer("generation", 1) or 1,
            backoff=backoff if isinstance(backoff, dict) else {},
            decode_errors=tuple(read.errors),
        )
        if read.errors:
            _report_undecodable(job_id, read.errors)
        return record

    def to_api(self) -> dict[str, Any]:
        """The full record of ``GET /jobs/{id}``."""
        shown: dict[str, Any] = {
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
        if self.decode_errors:
            shown["recordErrors"] = list(self.decode_errors)
        return shown

    def to_status(self) -> dict[str, Any]:
        """The short shape of ``GET /jobs/{id}/status``."""
        shown: dict[str, Any] = {
            "jobId": self.id,
            "type": self.type,
            "state": self.state,
            "createdAt": format_ms(self.created_at),
            "processedAt": format_ms(self.processed_at),
            "failedReason": self.failed_reason,
            "attempts": self.attempts,
        }
        if self.decode_errors:
            shown["recordErrors"] = list(self.decode_errors)
        return shown
