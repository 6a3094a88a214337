"""Job-type specs (name, payload schema, queue, retry policy, time limit) and the registry
that finds them by name or alias.

This module is light on purpose: every process imports it, and the API validates and
enqueues by name without importing any job code. The worker binds one implementation
to each spec (``jobcore.execution.job_lifecycle.bind_implementations``); the built-in
types are declared in ``catalogue.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobcore.errors import ConfigurationError
from jobcore.model.backoff import RetryPolicy

#: The JSON Schema of ``JobSpec.to_api`` (an item of ``GET /job-types``).
JOB_TYPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "queue", "payloadSchema", "retry", "timeLimitMs"],
    "properties": {
        "name": {"type": "string"},
        "aliases": {"type": "array", "items": {"type": "string"}},
        "description": {"type": "string"},
        "queue": {"type": "string"},
        "payloadSchema": {"type": "object"},
        "retry": {"type": "object"},
        "timeLimitMs": {"type": "integer", "minimum": 1},
        "interruptible": {"type": "boolean"},
        "permanentErrors": {
            "type": "array",
            "items": {"type": "string"},
            "description": "exception classes never retried",
        },
    },
}


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
