"""The built-in job types: their specs, declared once (implementations live in the worker
service, ``jobcore_worker.jobs``), and the registry every process loads."""

from __future__ import annotations

import importlib
from typing import Any

from jobcore.model.backoff import Backoff, RetryPolicy
from jobcore.model.email_addresses import EMAIL_FORMAT, HEADER_TEXT_PATTERN, MAX_ADDRESS
from jobcore.model.specs import JobSpec, JobTypes

#: Longest string field in the built-in payloads, in characters.
MAX_TEXT = 10_000


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


_TEXT = {"type": "string", "maxLength": MAX_TEXT}
#: An address the mailer can send to (``jobcore.model.email_addresses``), internationalised too.
_EMAIL = {"type": "string", "format": EMAIL_FORMAT, "maxLength": MAX_ADDRESS}
_SCALAR = {"type": ["string", "number", "boolean", "null"], "maxLength": MAX_TEXT}
#: Names of free-form fields (CSV columns): short enough to be a header.
_FIELD_NAME = {"maxLength": 200}
_MAIL_RETRY = RetryPolicy(5, Backoff("exponential", 1000, 60_000, 0.2))

WELCOME_EMAIL = JobSpec(
    name="welcome-email",
    queue="email",
    description="Sends a welcome e-mail over SMTP; the result is the Message-ID.",
    payload_schema=_object(
        {
            "email": _EMAIL,
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "pattern": HEADER_TEXT_PATTERN,
            },
            "message": _TEXT,
        },
        ["email", "name"],
    ),
    retry=_MAIL_RETRY,
)

EMAIL = JobSpec(
    name="email",
    queue="email",
    aliases=("EMAIL_SEND",),
    description="Sends an e-mail over SMTP; the result is the Message-ID.",
    payload_schema=_object(
        {
            "to": _EMAIL,
            "subject": {"type": "string", "maxLength": 998, "pattern": HEADER_TEXT_PATTERN},
            "body": {"type": "string", "maxLength": 100_000},
        },
        ["to", "subject", "body"],
    ),
    retry=_MAIL_RETRY,
)

REPORT = JobSpec(
    name="report",
    queue="reports",
    description="Works for durationSeconds, updating progress; the result is a summary.",
    payload_schema=_object(
        {
            "durationSeconds": {"type": "number", "minimum": 0, "maximum": 300},
            "steps": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
        ["durationSeconds"],
    ),
    retry=RetryPolicy(2, Backoff("fixed", 5000, None, 0.0)),
    time_limit_ms=330_000,
    interruptible=True,
)

CSV_EXPORT = JobSpec(
    name="csv-export",
    queue="default",
    aliases=("csv-generation",),
    description=(
        "Writes a CSV file: a flat object becomes key,value lines; {rows: [...]} becomes a "
        "header and rows. The result is the file's path."
    ),
    payload_schema={
        "type": "object",
        "maxProperties": 1000,
        "propertyNames": _FIELD_NAME,
        "if": {"required": ["rows"]},
        "then": {
            "properties": {
                "rows": {
                    "type": "array",
                    "maxItems": 10_000,
                    "items": {
                        "type": "object",
                        "maxProperties": 100,
                        "propertyNames": _FIELD_NAME,
                        "additionalProperties": _SCALAR,
                    },
                }
            },
            "additionalProperties": False,
        },
        "else": {"additionalProperties": _SCALAR},
    },
    retry=RetryPolicy(3, Backoff("exponential", 1000, 30_000, 0.0)),
)

DUMMY = JobSpec(
    name="dummy",
    queue="default",
    description="Exercises the system: succeeds, fails failTimes times, always fails, or sleeps.",
    payload_schema=_object(
        {
            "failTimes": {"type": "integer", "minimum": 0, "maximum": 100},
            "alwaysFail": {"type": "boolean"},
            "sleepSeconds": {"type": "number", "minimum": 0, "maximum": 60},
            "echo": _SCALAR,
        },
        [],
    ),
    retry=RetryPolicy(3, Backoff("fixed", 1000, None, 0.0)),
    time_limit_ms=120_000,
    interruptible=True,
)

CLEANUP = JobSpec(
    name="cleanup",
    queue="default",
    description=(
        "Prunes terminal records past their retention (JOBCORE_RETENTION, "
        "JOBCORE_FAILED_RETENTION) in bounded batches; the result counts what went."
    ),
    payload_schema=_object({"batchSize": {"type": "integer", "minimum": 1, "maximum": 1000}}, []),
    retry=RetryPolicy(2, Backoff("fixed", 5000, None, 0.0)),
    time_limit_ms=120_000,
    interruptible=True,
)

BUILTIN_SPECS: tuple[JobSpec, ...] = (WELCOME_EMAIL, EMAIL, REPORT, CSV_EXPORT, DUMMY, CLEANUP)


def builtin_job_types() -> JobTypes:
    return JobTypes(BUILTIN_SPECS)


def load_job_types(modules: str) -> JobTypes:
    """Built-in specs plus ``SPECS`` from each module named in ``modules`` (comma separated;
    ``Settings.job_modules``, from ``JOBCORE_JOB_MODULES``)."""
    extra: list[JobSpec] = []
    for name in filter(None, (m.strip() for m in modules.split(","))):
        extra += list(getattr(importlib.import_module(name), "SPECS", []))
    return builtin_job_types().with_specs(extra)
