"""Every error the API returns, as RFC 9457 problem details; Jobcore errors mapped in one place."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi
import structlog
from falcon.asgi import Request, Response

from jobcore import json_text
from jobcore.errors import (
    IdempotencyConflict,
    InvalidRequest,
    InvalidTransition,
    JobcoreError,
    NotReplicated,
    QueueFull,
    StoreUnavailable,
    SubmissionMayExist,
    SubmissionNotConfirmed,
)

#: Seconds a client should wait before retrying after a 503.
RETRY_AFTER_SECONDS = 1
PROBLEM_JSON = "application/problem+json"

#: The JSON Schema of every error body (``serialize``).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
    },
}
#: The JSON Schema of a 422's body: a problem listing each thing to fix.
VALIDATION_PROBLEM_SCHEMA: dict[str, Any] = {
    "allOf": [
        PROBLEM_SCHEMA,
        {
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["pointer", "detail"],
                        "properties": {
                            "pointer": {
                                "type": "string",
                                "description": "RFC 6901 pointer into the request",
                            },
                            "detail": {"type": "string"},
                        },
                    },
                }
            },
        },
    ]
}

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
    """The one mapping from Jobcore's errors to HTTP: each error's ``http_status`` and
    ``title``, with the members and headers its kind calls for."""
    status = falcon.code_to_http_status(error.http_status)
    detail, extra, headers = str(error), {}, None
    if isinstance(error, InvalidRequest):
        extra["errors"] = [{"pointer": p.pointer, "detail": p.detail} for p in error.problems]
    elif isinstance(error, IdempotencyConflict):
        extra["errors"] = [{"pointer": "/idempotencyKey", "detail": str(error)}]
    elif isinstance(error, InvalidTransition):
        extra["state"] = error.state
    if isinstance(error, StoreUnavailable):
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if isinstance(error, QueueFull):
            detail = f"{error}; retry later with the same idempotency key"
            extra["queue"] = error.queue
        elif isinstance(error, SubmissionNotConfirmed):
            detail = (
                f"job {error.job_id} was written, but {error.acknowledged} of {error.required} "
                "replica(s) confirmed it in time: it may exist, or be lost in a failover. Retry "
                "with the same idempotency key to get this job if it exists (a retry without a "
                "key may create a second job)"
            )
            extra.update(jobId=error.job_id, mayExist=True)
        elif isinstance(error, SubmissionMayExist):
            detail = (
                f"Redis did not answer in time: job {error.job_id} may or may not have been "
                "written. Retry with the same idempotency key to get this job if it exists (a "
                "retry without a key may create a second job), or read it first"
            )
            extra.update(jobId=error.job_id, mayExist=True)
        elif isinstance(error, NotReplicated):
            detail = (
                "the change was written, but not confirmed by enough replicas in time: it may "
                "or may not stand after a failover; read the job before trying again"
            )
        else:
            # The cause (a host, a port) goes to the log, not to the client.
            detail = (
                "the job store is unavailable; retry shortly (a submission with the same "
                "idempotency key)"
            )
    if error.http_status >= 500 and not isinstance(error, StoreUnavailable):
        return Problem(falcon.HTTP_500, "Internal error", "an unexpected error occurred")
    return Problem(status, error.title, detail, headers=headers, **extra)


def serialize(req: Request, resp: Response, exc: falcon.HTTPError) -> None:
    detail = exc.description or _routing_detail(req, resp, exc.status_code)
    body = (
        exc.to_problem()
        if isinstance(exc, Problem)
        else {
            "type": "about:blank",
            "title": exc.title,
            "status": exc.status_code,
            **({"detail": detail} if detail else {}),
        }
    )
    resp.content_type = PROBLEM_JSON
    resp.data = json_text.answer(body)


def _routing_detail(req: Request, resp: Response, status: int) -> str | None:
    """What to fix when Falcon's router refused the request (it says nothing itself)."""
    path = req.path if len(req.path) <= 200 else req.path[:200] + "…"
    if status == 404:
        return f"no route {path}; the routes are listed in /openapi.json"
    if status == 405:
        allowed = resp.get_header("Allow") or ""
        return f"{path} does not take {req.method}; it takes {allowed}"
    return None


async def handle_jobcore_error(
    req: Request, resp: Response, ex: JobcoreError, params: dict[str, Any]
) -> None:
    raise as_problem(ex)


async def handle_unexpected(
    req: Request, resp: Response, ex: Exception, params: dict[str, Any]
) -> None:
    if isinstance(ex, falcon.HTTPError):
        raise ex
    log.exception("unhandled error", path=req.path, method=req.method)
    raise Problem(falcon.HTTP_500, "Internal error", "an unexpected error occurred")


def install(app: falcon.asgi.App) -> None:
    app.set_error_serializer(serialize)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(JobcoreError, handle_jobcore_error)
