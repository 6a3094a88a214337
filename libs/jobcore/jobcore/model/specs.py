"""Job-type specs: name, payload schema, queue, retry policy and time limit of each type.

This module is light on purpose: every process imports it, and the API validates and
enqueues by name without importing any job code. The worker binds one implementation
to each spec (``jobcore.execution.job_lifecycle.bind_implementations``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobcore.errors import ConfigurationError
from jobcore.model.backoff import Backoff, RetryPolicy
from jobcore.model.email_addresses import EMAIL_FORMAT, MAX_ADDRESS

#: Longest string field in the built-in payloads, in characters.
MAX_TEXT = 10_000


@dataclass(frozen=True)
class JobSpec:
    """What every process knows about one job type."""

    name: str
    queue: str
    payload_schema: dict[str, Any]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: Milliseconds one attempt may run before it is interrupted and counted as failed.
    time_limit_ms: int = 60_000
    #: Other names accepted on submission for this type.
    aliases: tuple[str, ...] = ()
    #: Whether a graceful worker shutdown asks a running attempt to stop (``job.sleep`` and
    #: ``job.stop_if_asked`` raise ``JobInterrupted``) and requeues it.
    interruptible: bool = False
    description: str = ""
    #: Exceptions retrying cannot fix: the job fails permanently at once (as if the code
    #: raised ``PermanentError``), however many attempts were left.
    permanent_errors: tuple[type[BaseException], ...] = ()

    @property
    def actor_name(self) -> str:
        """The Dramatiq actor name messages of this type carry."""
        return self.name.replace("-", "_")

    def to_api(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "description": self.description,
            "queue": self.queue,
            "payloadSchema": self.payload_schema,
            "retry": {
                "maxAttempts": self.retry.max_attempts,
                "maxDeliveries": self.retry.max_deliveries,
                "backoff": self.retry.backoff.to_json(),
            },
            "timeLimitMs": self.time_limit_ms,
            "interruptible": self.interruptible,
            "permanentErrors": [error.__name__ for error in self.permanent_errors],
        }


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
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
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
            "subject": {"type": "string", "maxLength": 998},
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


@dataclass(frozen=True)
class JobTypes:
    """The registry of specs, looked up by name or alias."""

    specs: tuple[JobSpec, ...]
    _by_name: Mapping[str, JobSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, JobSpec] = {}
        for spec in self.specs:
            for name in (spec.name, *spec.aliases):
                if name in by_name:
                    raise ConfigurationError(f"job type name {name!r} is declared twice")
                by_name[name] = spec
        object.__setattr__(self, "_by_name", by_name)

    def find(self, name: str) -> JobSpec | None:
        return self._by_name.get(name)

    def canonical_name(self, name: object) -> str | None:
        """The spec name behind a name or alias; ``None`` for anything else."""
        spec = self._by_name.get(name) if isinstance(name, str) else None
        return spec.name if spec else None

    def names(self) -> list[str]:
        return [spec.name for spec in self.specs]

    def queues(self) -> list[str]:
        return sorted({spec.queue for spec in self.specs})

    def with_specs(self, extra: Iterable[JobSpec]) -> JobTypes:
        return JobTypes((*self.specs, *extra))


def builtin_job_types() -> JobTypes:
    return JobTypes(BUILTIN_SPECS)


def load_job_types(modules: str) -> JobTypes:
    """Built-in specs plus ``SPECS`` from each module named in ``modules`` (comma separated;
    ``Settings.job_modules``, from ``JOBCORE_JOB_MODULES``)."""
    import importlib

    extra: list[JobSpec] = []
    for name in filter(None, (m.strip() for m in modules.split(","))):
        extra += list(getattr(importlib.import_module(name), "SPECS", []))
    return builtin_job_types().with_specs(extra)
