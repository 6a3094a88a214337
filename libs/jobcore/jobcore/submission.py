"""What a job submission may contain, and turning a raw body into a checked ``Submission``.

The API, the command line and the scheduler all build a ``Submission`` here, so they
accept and refuse exactly the same things with the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from jobcore.clock import parse_rfc3339
from jobcore.errors import InvalidRequest, MalformedRequest, Problem, UnknownJobType
from jobcore.idempotency import MAX_KEY_LENGTH, key_problem
from jobcore.specs import JobSpec, JobTypes

#: Longest delay a job may be submitted with (Dramatiq refuses delays of 7 days or more).
MAX_DELAY_SECONDS = 7 * 86400 - 3600
#: Most attempts a submission may ask for.
MAX_ATTEMPTS_LIMIT = 100
#: Longest backoff delay, in milliseconds.
MAX_BACKOFF_MS = 86_400_000

SUBMISSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "minLength": 1, "maxLength": 100},
        "payload": {"type": "object"},
        "idempotencyKey": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
        "delaySeconds": {"type": "number", "minimum": 0, "maximum": MAX_DELAY_SECONDS},
        "runAt": {"type": "string", "maxLength": 64},
        "maxAttempts": {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS_LIMIT},
        "backoff": {
            "type": "object",
            "properties": {
                "type": {"enum": ["fixed", "exponential"]},
                "delayMs": {"type": "integer", "minimum": 0, "maximum": MAX_BACKOFF_MS},
                "maxDelayMs": {"type": "integer", "minimum": 0, "maximum": MAX_BACKOFF_MS},
                "jitter": {"type": ["boolean", "number"], "minimum": 0, "maximum": 1},
            },
            "required": ["type", "delayMs"],
            "additionalProperties": False,
        },
    },
    "required": ["type"],
    "additionalProperties": False,
}

_ENVELOPE = Draft202012Validator(SUBMISSION_SCHEMA)


@dataclass(frozen=True)
class Submission:
    """A checked request to create one job."""

    spec: JobSpec
    payload: dict[str, Any]
    idempotency_key: str | None = None
    delay_ms: int | None = None
    run_at_ms: int | None = None
    max_attempts: int | None = None
    backoff: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)


def pointer(base: str, path: Any) -> str:
    """A JSON pointer (RFC 6901) for a jsonschema error path under ``base``."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return base + "".join("/" + p for p in parts)


def describe(error: ValidationError) -> str:
    """A message that says what to fix, for one jsonschema error."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        instance = error.instance if isinstance(error.instance, dict) else {}
        extra = sorted(set(instance) - set(schema.get("properties", {})))
        if schema.get("additionalProperties") is False:
            allowed = ", ".join(sorted(schema.get("properties", {}))) or "none"
            return f"unknown field(s) {', '.join(extra)}; allowed: {allowed}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "pattern" and schema.get("pattern", "").startswith("^[^@"):
        return f"{error.instance!r} is not an e-mail address"
    return str(error.message)


def schema_problems(validator: Draft202012Validator, instance: Any, base: str) -> list[Problem]:
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [Problem(pointer(base, e.absolute_path), describe(e)) for e in errors]


class SubmissionParser:
    """Checks raw submissions against the envelope schema and each type's payload schema."""

    def __init__(self, job_types: JobTypes, *, require_idempotency_key: bool = False) -> None:
        self.job_types = job_types
        self.require_idempotency_key = require_idempotency_key
        self._payload_validators = {
            spec.name: Draft202012Validator(spec.payload_schema) for spec in job_types.specs
        }

    def parse(self, body: Any, header_key: str | None = None, *, now_ms: int) -> Submission:
        if not isinstance(body, dict):
            raise InvalidRequest([Problem("", "the body must be a JSON object")])
        problems = schema_problems(_ENVELOPE, body, "")
        if problems:
            raise InvalidRequest(problems)

        spec = self.job_types.find(body["type"])
        if spec is None:
            known = ", ".join(self.job_types.names())
            raise UnknownJobType(
                [Problem("/type", f"unknown job type {body['type']!r}; known types: {known}")],
                title="Unknown job type",
            )
        payload = body.get("payload", {})
        problems = schema_problems(self._payload_validators[spec.name], payload, "/payload")

        body_key = body.get("idempotencyKey")
        if header_key is not None and body_key is not None and header_key != body_key:
            raise MalformedRequest(
                "The Idempotency-Key header and idempotencyKey in the body differ; send one"
            )
        key = header_key if header_key is not None else body_key
        if key is not None and (why := key_problem(key)):
            problems.append(Problem("/idempotencyKey", f"the idempotency key {why}"))
        if key is None and self.require_idempotency_key:
            raise MalformedRequest(
                "An idempotency key is required: send an Idempotency-Key header "
                "or idempotencyKey in the body"
            )

        delay_ms, run_at_ms = None, None
        if "delaySeconds" in body and "runAt" in body:
            problems.append(Problem("/runAt", "send delaySeconds or runAt, not both"))
        elif "delaySeconds" in body:
            delay_ms = int(body["delaySeconds"] * 1000)
        elif "runAt" in body:
            try:
                run_at_ms = parse_rfc3339(body["runAt"])
            except ValueError:
                problems.append(
                    Problem(
                        "/runAt",
                        "must be an RFC 3339 time with an offset, like 2026-01-18T10:12:30.000Z",
                    )
                )
            else:
                if run_at_ms - now_ms > MAX_DELAY_SECONDS * 1000:
                    problems.append(
                        Problem("/runAt", f"must be at most {MAX_DELAY_SECONDS} s from now")
                    )
        backoff = body.get("backoff")
        max_delay = backoff.get("maxDelayMs") if backoff else None
        if backoff and max_delay is not None and max_delay < backoff["delayMs"]:
            problems.append(Problem("/backoff/maxDelayMs", "must be at least delayMs"))
        if problems:
            raise InvalidRequest(problems)

        options = {
            name: body[name]
            for name in ("delaySeconds", "runAt", "maxAttempts", "backoff")
            if name in body
        }
        return Submission(
            spec=spec,
            payload=payload,
            idempotency_key=key,
            delay_ms=delay_ms,
            run_at_ms=run_at_ms,
            max_attempts=body.get("maxAttempts"),
            backoff=backoff,
            options=options,
        )
