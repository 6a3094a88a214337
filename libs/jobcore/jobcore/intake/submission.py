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
from jobcore.errors import InvalidRequest, MalformedRequest, Problem, UnknownJobType, quoted
from jobcore.intake.idempotency import KEY_PATTERN, key_problem
from jobcore.intake.limits import DEFAULT_LIMITS, RequestLimits, payload_problems
from jobcore.intake.schema_formats import FORMAT_CHECKER
from jobcore.intake.schema_messages import schema_message
from jobcore.intake.schema_quick_check import QuickCheck, quick_check
from jobcore.intake.whole_numbers import contains_float, whole_numbers
from jobcore.model.email_addresses import HEADER_TEXT_PATTERN
from jobcore.model.specs import JobSpec, JobTypes

#: RFC 3339 date-time with an explicit offset (Python's ISO parser alone accepts more).
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
#: What to send instead of a time that is not RFC 3339.
RFC3339_HINT = "must be an RFC 3339 time with an offset, like 2026-01-18T10:12:30.000Z"


def submission_schema(limits: RequestLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The JSON Schema of a ``POST /jobs`` body (the envelope; payloads have their own)."""
    backoff_ms = {"type": "integer", "minimum": 0, "maximum": limits.max_backoff_ms}
    return {
        "type": "object",
        "properties": {
            "type": {"type": "string", "minLength": 1, "maxLength": 100},
            "payload": {"type": "object"},
            "idempotencyKey": {
                "type": "string",
                "minLength": 1,
                "maxLength": limits.max_idempotency_key_length,
                "pattern": KEY_PATTERN,
            },
            "delaySeconds": {"type": "number", "minimum": 0, "maximum": limits.max_delay_seconds},
            "runAt": {"type": "string", "maxLength": 64, "pattern": RFC3339_PATTERN},
            "maxAttempts": {"type": "integer", "minimum": 1, "maximum": limits.max_attempts},
            "backoff": {
                "type": "object",
                "properties": {
                    "type": {"enum": ["fixed", "exponential"]},
                    "delayMs": backoff_ms,
                    # null = no cap, as GET /job-types shows a policy without one.
                    "maxDelayMs": {**backoff_ms, "type": ["integer", "null"]},
                    "jitter": {"type": ["boolean", "number"], "minimum": 0, "maximum": 1},
                },
                "required": ["type", "delayMs"],
                "additionalProperties": False,
            },
        },
        "required": ["type"],
        "additionalProperties": False,
    }


SUBMISSION_SCHEMA: dict[str, Any] = submission_schema()


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
    #: Whether payload or options may hold a float (their JSON text is then the standard
    #: library's, ``json_text``).
    holds_floats: bool = True


def pointer(base: str, path: Any) -> str:
    """A JSON pointer (RFC 6901) for a jsonschema error path under ``base``."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return base + "".join("/" + p for p in parts)


#: What the envelope's patterns mean, said instead of the pattern itself.
PATTERN_MEANINGS = {
    RFC3339_PATTERN: RFC3339_HINT,
    KEY_PATTERN: "the idempotency key must not contain control characters",
    HEADER_TEXT_PATTERN: "must be one line (no CR or LF): it goes into an e-mail header",
}


def describe(error: ValidationError) -> str:
    """A message that says what to fix, for one jsonschema error."""
    return schema_message(error, patterns=PATTERN_MEANINGS)


def schema_problems(validator: Draft202012Validator, instance: Any, base: str) -> list[Problem]:
    """Each problem once: errors of one place that say the same (a ``required`` error per
    missing member, each describing them all) are one problem."""
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    found = [Problem(pointer(base, e.absolute_path), describe(e)) for e in errors]
    return list(dict.fromkeys(found))


def checked_problems(
    validator: Draft202012Validator, quick: QuickCheck | None, instance: Any, base: str
) -> list[Problem]:
    """``schema_problems``, skipped when ``quick`` already says the instance is valid."""
    if quick is not None and quick(instance):
        return []
    return schema_problems(validator, instance, base)


class SubmissionParser:
    """Checks raw submissions against the envelope schema and each type's payload schema."""

    def __init__(
        self,
        job_types: JobTypes,
        *,
        require_idempotency_key: bool = False,
        limits: RequestLimits = DEFAULT_LIMITS,
    ) -> None:
        self.job_types = job_types
        self.require_idempotency_key = require_idempotency_key
        self.limits = limits
        self.schema = submission_schema(limits)
        self._envelope = Draft202012Validator(self.schema)
        self._envelope_quick = quick_check(self.schema)
        self._payload_validators = {
            spec.name: Draft202012Validator(spec.payload_schema, format_checker=FORMAT_CHECKER)
            for spec in job_types.specs
        }
        self._payload_quick = {
            spec.name: quick_check(spec.payload_schema) for spec in job_types.specs
        }

    def parse(self, body: Any, header_key: str | None = None, *, now_ms: int) -> Submission:
        if not isinstance(body, dict):
            raise InvalidRequest([Problem("", "the body must be a JSON object")])
        problems = checked_problems(self._envelope, self._envelope_quick, body, "")
        if problems:
            raise InvalidRequest(problems)

        spec = self.job_types.find(body["type"])
        if spec is None:
            known = ", ".join(self.job_types.names())
            unknown = quoted(body["type"])
            raise UnknownJobType(
                [Problem("/type", f"unknown job type {unknown}; known types: {known}")],
                title="Unknown job type",
            )
        payload = body.get("payload", {})
        problems = checked_problems(
            self._payload_validators[spec.name], self._payload_quick[spec.name], payload, "/payload"
        )
        problems += payload_problems(payload, self.limits)

        body_key = body.get("idempotencyKey")
        if header_key is not None and body_key is not None and header_key != body_key:
            raise MalformedRequest(
                "The Idempotency-Key header and idempotencyKey in the body differ; send one"
            )
        key = header_key if header_key is not None else body_key
        if key is not None and (why := key_problem(key, self.limits.max_idempotency_key_length)):
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
                problems.append(Problem("/runAt", RFC3339_HINT))
            else:
                furthest = self.limits.max_delay_seconds
                if abs(run_at_ms - now_ms) > furthest * 1000:
                    problems.append(
                        Problem("/runAt", f"must be within {furthest} s of now, either way")
                    )
        backoff = body.get("backoff")
        max_delay = backoff.get("maxDelayMs") if backoff else None
        if backoff and max_delay is not None and max_delay < backoff["delayMs"]:
            problems.append(Problem("/backoff/maxDelayMs", "must be at least delayMs"))
        if problems:
            raise InvalidRequest(problems)

        holds_floats = contains_float(body)
        if holds_floats:
            # 1.0 where an integer is meant is stored (and fingerprinted) as 1.
            body = whole_numbers(body, self.schema)
            payload = whole_numbers(body.get("payload", {}), spec.payload_schema)
            backoff = body.get("backoff")
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
            holds_floats=holds_floats,
        )
