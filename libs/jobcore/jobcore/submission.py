"""What a job submission may contain, and turning a raw body into a checked ``Submission``.

The API, the command line and the scheduler all build a ``Submission`` here, so they
accept and refuse exactly the same things with the same messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from jobcore.clock import parse_rfc3339
from jobcore.errors import InvalidRequest, MalformedRequest, Problem, UnknownJobType
from jobcore.idempotency import key_problem
from jobcore.limits import RequestLimits, payload_problems
from jobcore.specs import JobSpec, JobTypes

#: The limits of a parser built without settings.
DEFAULT_LIMITS = RequestLimits()
#: Longest delay a job may be submitted with by default (see ``RequestLimits``).
MAX_DELAY_SECONDS = DEFAULT_LIMITS.max_delay_seconds
#: RFC 3339 date-time with an explicit offset (Python's ISO parser alone accepts more).
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
#: An idempotency key: no control characters (C0, DEL, C1).
IDEMPOTENCY_KEY_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
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
                "pattern": IDEMPOTENCY_KEY_PATTERN,
            },
            "delaySeconds": {"type": "number", "minimum": 0, "maximum": limits.max_delay_seconds},
            "runAt": {"type": "string", "maxLength": 64, "pattern": RFC3339_PATTERN},
            "maxAttempts": {"type": "integer", "minimum": 1, "maximum": limits.max_attempts},
            "backoff": {
                "type": "object",
                "properties": {
                    "type": {"enum": ["fixed", "exponential"]},
                    "delayMs": backoff_ms,
                    "maxDelayMs": backoff_ms,
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
    if error.validator == "pattern" and schema.get("pattern") == RFC3339_PATTERN:
        return RFC3339_HINT
    if error.validator == "pattern" and schema.get("pattern") == IDEMPOTENCY_KEY_PATTERN:
        return "the idempotency key must not contain control characters"
    return str(error.message)


def schema_problems(validator: Draft202012Validator, instance: Any, base: str) -> list[Problem]:
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [Problem(pointer(base, e.absolute_path), describe(e)) for e in errors]


# --- a quick yes for valid input -------------------------------------------------------
#
# jsonschema walks a schema keyword by keyword through generators: about a tenth of an API
# request's CPU for the envelope and a small payload. ``quick_check`` compiles the keywords
# Jobcore's schemas use into one plain function that answers True only when jsonschema
# would find no error; anything else (False, or a schema it cannot compile) goes to
# jsonschema, which stays the judge and writes every message.

#: Keywords that describe and never refuse.
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$comment", "deprecated", "readOnly"}
)
QuickCheck = Callable[[Any], bool]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPE_CHECKS: dict[str, QuickCheck] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    # Draft 2020-12: 1.0 is an integer too.
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
}
#: Scalar kinds whose equality is JSON equality (``enum``/``const``); others go to jsonschema.
_PLAIN = (str, bool, type(None))


def _same_json(value: Any, allowed: Any) -> bool:
    return type(value) is type(allowed) and isinstance(value, _PLAIN) and value == allowed


def quick_check(schema: Any) -> QuickCheck | None:
    """A function accepting only instances ``schema`` accepts (it may refuse some it would
    accept), or None when ``schema`` uses a keyword this compiler does not know."""
    if schema is True or schema == {}:
        return lambda _value: True
    if not isinstance(schema, dict) or set(schema) - _KEYWORDS.keys() - _ANNOTATIONS:
        return None
    checks: list[QuickCheck] = []
    for keyword, argument in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        check = _KEYWORDS[keyword](argument, schema)
        if check is None:
            return None
        checks.append(check)
    if len(checks) == 1:
        return checks[0]
    return lambda value: all(check(value) for check in checks)


def _type(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    names = [argument] if isinstance(argument, str) else argument
    if not isinstance(names, list) or any(n not in _TYPE_CHECKS for n in names):
        return None
    checks = [_TYPE_CHECKS[n] for n in names]
    if len(checks) == 1:
        return checks[0]
    return lambda value: any(check(value) for check in checks)


def _bound(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], QuickCheck | None]:
    def build(limit: Any, schema: dict[str, Any]) -> QuickCheck | None:
        if not _is_number(limit):
            return None
        return lambda value: not _is_number(value) or compare(value, limit)

    return build


def _length(compare: Callable[[int, int], bool]) -> Callable[[Any, Any], QuickCheck | None]:
    def build(limit: Any, schema: dict[str, Any]) -> QuickCheck | None:
        if not isinstance(limit, int) or isinstance(limit, bool):
            return None
        return lambda value: not isinstance(value, str) or compare(len(value), limit)

    return build


def _count(
    kind: type[Sized], compare: Callable[[int, int], bool]
) -> Callable[[Any, Any], QuickCheck | None]:
    def build(limit: Any, schema: dict[str, Any]) -> QuickCheck | None:
        if not isinstance(limit, int) or isinstance(limit, bool):
            return None
        return lambda value: not isinstance(value, kind) or compare(len(value), limit)

    return build


def _pattern(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    if not isinstance(argument, str):
        return None
    search = re.compile(argument).search  # what jsonschema calls: re.search
    return lambda value: not isinstance(value, str) or search(value) is not None


def _enum(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    if not isinstance(argument, list):
        return None
    return lambda value: any(_same_json(value, allowed) for allowed in argument)


def _const(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    return lambda value: _same_json(value, argument)


def _required(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    if not isinstance(argument, list):
        return None
    names = tuple(argument)
    return lambda value: not isinstance(value, dict) or all(n in value for n in names)


def _properties(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    if not isinstance(argument, dict):
        return None
    checks = {}
    for name, subschema in argument.items():
        check = quick_check(subschema)
        if check is None:
            return None
        checks[name] = check

    def properties(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        for name, item in value.items():
            check = checks.get(name)
            if check is not None and not check(item):
                return False
        return True

    return properties


def _additional_properties(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    if "patternProperties" in schema or not isinstance(schema.get("properties", {}), dict):
        return None
    known = frozenset(schema.get("properties", {}))
    check = quick_check(argument) if argument is not False else None
    if argument is not False and check is None:
        return None

    def additional(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        if check is None:  # additionalProperties: false
            return known.issuperset(value)
        return all(check(item) for name, item in value.items() if name not in known)

    return additional


def _property_names(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    check = quick_check(argument)
    if check is None:
        return None
    return lambda value: not isinstance(value, dict) or all(check(name) for name in value)


def _items(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    check = quick_check(argument)
    if check is None or "prefixItems" in schema:
        return None
    return lambda value: not isinstance(value, list) or all(check(item) for item in value)


_KEYWORDS: dict[str, Callable[[Any, dict[str, Any]], QuickCheck | None]] = {
    "type": _type,
    "minimum": _bound(lambda value, limit: value >= limit),
    "maximum": _bound(lambda value, limit: value <= limit),
    "exclusiveMinimum": _bound(lambda value, limit: value > limit),
    "exclusiveMaximum": _bound(lambda value, limit: value < limit),
    "minLength": _length(lambda size, limit: size >= limit),
    "maxLength": _length(lambda size, limit: size <= limit),
    "pattern": _pattern,
    "enum": _enum,
    "const": _const,
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional_properties,
    "propertyNames": _property_names,
    "minProperties": _count(dict, lambda size, limit: size >= limit),
    "maxProperties": _count(dict, lambda size, limit: size <= limit),
    "items": _items,
    "minItems": _count(list, lambda size, limit: size >= limit),
    "maxItems": _count(list, lambda size, limit: size <= limit),
}


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
            spec.name: Draft202012Validator(spec.payload_schema) for spec in job_types.specs
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
            raise UnknownJobType(
                [Problem("/type", f"unknown job type {body['type']!r}; known types: {known}")],
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
