"""Every error the API returns, as RFC 9457 problem details; Jobcore errors mapped in one place."""

from __future__ import annotations

import json
from typing import Any

import falcon
import structlog

from jobcore.errors import (
    IdempotencyConflict,
    InvalidRequest,
    InvalidTransition,
    JobcoreError,
    JobNotFound,
    MalformedRequest,
    NotReplicated,
    QueueFull,
    StoreUnavailable,
    SubmissionNotConfirmed,
)

#: Seconds a client should wait before retrying after a 503.
RETRY_AFTER_SECONDS = 1
PROBLEM_JSON = "application/problem+json"

log = structlog.get_logger("jobcore.api")


class Problem(falcon.HTTPError):
    """An HTTP error whose body is problem+json with optional extra members."""

    def __init__(
        self,
        status: str,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(status, title=title, description=detail, headers=headers)
        self.extra = extra

    def to_problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status_code,
        }
        if self.description:
            body["detail"] = self.description
        body.update(self.extra)
        return body


def problem(status: str, title: str, detail: str | None = None, **extra: Any) -> Problem:
    return Problem(status, title, detail, **extra)


def as_problem(error: JobcoreError) -> Problem:
    """The one mapping from Jobcore's errors to HTTP."""
    if isinstance(error, InvalidRequest):
        errors = [{"pointer": p.pointer, "detail": p.detail} for p in error.problems]
        return Problem(falcon.HTTP_422, error.title, str(error), errors=errors)
    if isinstance(error, IdempotencyConflict):
        return Problem(
            falcon.HTTP_422,
            "Idempotency key reused",
            str(error),
            errors=[{"pointer": "/idempotencyKey", "detail": str(error)}],
        )
    if isinstance(error, MalformedRequest):
        return Problem(falcon.HTTP_400, "Bad request", str(error))
    if isinstance(error, JobNotFound):
        return Problem(falcon.HTTP_404, "Job not found", str(error))
    if isinstance(error, InvalidTransition):
        return Problem(
            falcon.HTTP_409, "Conflict with the job's state", str(error), state=error.state
        )
    if isinstance(error, QueueFull):
        return Problem(
            falcon.HTTP_503,
            "Queue full",
            f"{error}; retry later with the same idempotency key",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            queue=error.queue,
        )
    if isinstance(error, SubmissionNotConfirmed):
        return Problem(
            falcon.HTTP_503,
            "Submission not confirmed",
            f"job {error.job_id} was written, but {error.acknowledged} of {error.required} "
            "replica(s) confirmed it in time: it may exist, or be lost in a failover. Retry "
            "with the same idempotency key to get this job if it exists (a retry without a "
            "key may create a second job)",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            jobId=error.job_id,
            mayExist=True,
        )
    if isinstance(error, NotReplicated):
        return Problem(
            falcon.HTTP_503,
            "Change not confirmed",
            "the change was written, but not confirmed by enough replicas in time: it may "
            "or may not stand after a failover; read the job before trying again",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(error, StoreUnavailable):
        return Problem(
            falcon.HTTP_503,
            "Service unavailable",
            "the job store is unavailable; retry shortly with the same idempotency key",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return Problem(falcon.HTTP_500, "Internal error", str(error))


def serialize(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    body = (
        exc.to_problem()
        if isinstance(exc, Problem)
        else {
            "type": "about:blank",
            "title": exc.title,
            "status": exc.status_code,
            **({"detail": exc.description} if exc.description else {}),
        }
    )
    resp.content_type = PROBLEM_JSON
    resp.text = json.dumps(body)


def handle_jobcore_error(
    req: falcon.Request, resp: falcon.Response, ex: JobcoreError, params: dict[str, Any]
) -> None:
    raise as_problem(ex)


def handle_unexpected(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    if isinstance(ex, falcon.HTTPError):
        raise ex
    log.exception("unhandled error", path=req.path, method=req.method)
    raise Problem(falcon.HTTP_500, "Internal error", "an unexpected error occurred")


def install(app: falcon.App) -> None:
    app.set_error_serializer(serialize)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(JobcoreError, handle_jobcore_error)
