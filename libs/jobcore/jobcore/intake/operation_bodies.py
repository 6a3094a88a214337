"""The small request bodies of operations (retry one job, retry dead letters in bulk): their
schemas, checked through the same problem reporting as submissions."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from jobcore.errors import InvalidRequest, Problem
from jobcore.intake.submission import schema_problems

#: ``effects`` of a retry: keep unfinished effect reservations (a job that needs a human
#: check fails again at once) or reset them (after a human checked; they may run again).
EFFECTS = {"enum": ["keep", "reset"], "default": "keep"}

#: ``POST /jobs/{id}/retry``.
RETRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"effects": EFFECTS},
    "additionalProperties": False,
}
#: ``POST /jobs/dead/retry``.
BULK_RETRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "minLength": 1, "maxLength": 100},
        "effects": EFFECTS,
        "includePermanent": {
            "type": "boolean",
            "default": False,
            "description": "also retry jobs that failed permanently",
        },
    },
    "additionalProperties": False,
}

_VALIDATORS = {id(s): Draft202012Validator(s) for s in (RETRY_SCHEMA, BULK_RETRY_SCHEMA)}


def checked_body(schema: dict[str, Any], body: Any) -> dict[str, Any]:
    """``body`` if ``schema`` accepts it (an absent body is ``{}``); ``InvalidRequest`` saying
    what to fix otherwise."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidRequest([Problem("", "the body must be a JSON object")])
    problems = schema_problems(_VALIDATORS[id(schema)], body, "")
    if problems:
        raise InvalidRequest(problems)
    return body
