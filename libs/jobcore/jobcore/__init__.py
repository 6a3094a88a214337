"""Jobcore: background jobs over HTTP, run by Dramatiq workers on Redis.

The plug-in API — what a job type's module imports — is named here::

    from jobcore import Backoff, JobContext, JobSpec, PermanentError, RetryPolicy

Names load on first use, so importing ``jobcore`` alone starts nothing (the metrics set-up
must run before ``prometheus_client`` is imported, for one).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobcore.errors import (
        ConfigurationError,
        JobcoreError,
        JobInterrupted,
        PermanentError,
    )
    from jobcore.execution.context import JobContext, current_job
    from jobcore.execution.effects import EffectGuard, HumanCheckRequired
    from jobcore.execution.job_lifecycle import JobFunction
    from jobcore.model.backoff import Backoff, RetryPolicy
    from jobcore.model.specs import JobSpec, JobTypes
    from jobcore.settings import Settings

#: Each public name and the module that defines it.
_SOURCES = {
    "Backoff": "jobcore.model.backoff",
    "ConfigurationError": "jobcore.errors",
    "EffectGuard": "jobcore.execution.effects",
    "HumanCheckRequired": "jobcore.execution.effects",
    "JobContext": "jobcore.execution.context",
    "JobFunction": "jobcore.execution.job_lifecycle",
    "JobInterrupted": "jobcore.errors",
    "JobSpec": "jobcore.model.specs",
    "JobTypes": "jobcore.model.specs",
    "JobcoreError": "jobcore.errors",
    "PermanentError": "jobcore.errors",
    "RetryPolicy": "jobcore.model.backoff",
    "Settings": "jobcore.settings",
    "current_job": "jobcore.execution.context",
}

__all__ = [
    "Backoff",
    "ConfigurationError",
    "EffectGuard",
    "HumanCheckRequired",
    "JobContext",
    "JobFunction",
    "JobInterrupted",
    "JobSpec",
    "JobTypes",
    "JobcoreError",
    "PermanentError",
    "RetryPolicy",
    "Settings",
    "current_job",
]


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'jobcore' has no attribute {name!r}")
    return getattr(import_module(source), name)
