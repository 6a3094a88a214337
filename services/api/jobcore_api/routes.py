"""Every route of the API, once: path, method, resource, operation id, the role it needs,
its query parameters, request body and responses.

The app registers its routes from this table (``app.py``), authentication reads each
route's role from it (``auth.py``), the query-parameter check reads its parameters
(``query_parameters.py``), and the OpenAPI document renders it (``openapi.py``); the
README's route table is ``routes_markdown()``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What an API key must be allowed when API keys are on."""

    #: No key needed: probes, scrapes and the contract itself.
    OPEN = "open"
    #: Any key (``submit`` or ``admin``).
    READ = "read"
    #: A ``submit`` or ``admin`` key.
    SUBMIT = "submit"
    #: An ``admin`` key.
    ADMIN = "admin"


@dataclass(frozen=True)
class Reply:
    """One success answer of a route: its status, and the schema of its body (a component
    name of the OpenAPI document) or a media type of its own."""

    status: int
    description: str
    schema: str
    headers: tuple[str, ...] = ()
    media: str = "application/json"


@dataclass(frozen=True)
class Route:
    method: str
    #: The path as Falcon routes it (``{job_id}`` for a path parameter).
    path: str
    #: The name of the resource serving it (``app.create_app`` builds them).
    resource: str
    operation_id: str
    summary: str
    role: Role
    replies: tuple[Reply, ...]
    #: Error statuses a client can cause besides those implied (auth, body, query).
    errors: tuple[int, ...] = ()
    #: The component schema of its body, if it takes one.
    body: str | None = None
    body_required: bool = False
    #: Query parameters it takes (any other is refused with a 422).
    query: tuple[str, ...] = ()
    #: It reads the ``Idempotency-Key`` header.
    idempotency_header: bool = False
    #: What the README's route table says it does.
    does: str = ""

    @property
    def statuses(self) -> tuple[int, ...]:
        """Every status this route answers with, implied ones included."""
        found = {reply.status for reply in self.replies} | set(self.errors)
        if self.role is not Role.OPEN:
            found.add(401)
        if self.role is Role.ADMIN:
            found.add(403)
        if self.body is not None:
            found |= {400, 413, 415, 422}
        elif self.method not in ("GET", "HEAD"):
            # A body sent to an operation that takes none.
            found.add(422)
        if self.query:
            found.add(422)
        return tuple(sorted(found))


_ADMIN = " Needs an admin API key when API keys are on."
_LIST_QUERY = ("state", "type", "limit", "cursor")
_DEAD_QUERY = ("type", "limit", "cursor")

ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/jobs",
        "jobs",
        "submitJob",
        "Submit a job; answers at once",
        Role.SUBMIT,
        (
            Reply(202, "accepted", "Accepted", ("Location",)),
            Reply(
                200,
                "an idempotent replay: the job first created with this key",
                "Accepted",
                ("Location", "Idempotent-Replayed"),
            ),
        ),
        errors=(503,),
        body="Submission",
        body_required=True,
        idempotency_header=True,
        does='submit a job → `202 {"status":"accepted","jobId","state"}` + `Location`',
    ),
    Route(
        "GET",
        "/jobs",
        "jobs",
        "listJobs",
        "Jobs, newest first, by state and/or type",
        Role.READ,
        (Reply(200, "a page", "JobPage"),),
        errors=(503,),
        query=_LIST_QUERY,
        does="list, newest first; filters `state`, `type`, `limit`, `cursor`",
    ),
    Route(
        "GET",
        "/jobs/stats",
        "stats",
        "jobStats",
        "Counts per state and type, queue depths, delayed and dead letters",
        Role.READ,
        (Reply(200, "the counts", "Stats"),),
        errors=(503,),
        does="counts per state and type, queue depths, delayed, dead letters",
    ),
    Route(
        "GET",
        "/jobs/dead",
        "dead_letters",
        "listDeadLetters",
        "Failed jobs, newest first",
        Role.READ,
        (Reply(200, "a page", "JobPage"),),
        errors=(503,),
        query=_DEAD_QUERY,
        does="failed jobs (dead letters), newest first; filter `type`, `limit`, `cursor`",
    ),
    Route(
        "DELETE",
        "/jobs/dead",
        "dead_letters",
        "purgeDeadLetters",
        "Delete dead letters (of one type); says how many." + _ADMIN,
        Role.ADMIN,
        (Reply(200, "how many went", "DeadPurged"),),
        errors=(503,),
        query=("type",),
        does="purge dead letters (`?type=`)",
    ),
    Route(
        "POST",
        "/jobs/dead/retry",
        "dead_letters_retry",
        "retryDeadLetters",
        "Retry dead letters in bulk (at most 1,000 per call, oldest first); jobs that need a "
        "human check are skipped unless effects=reset, jobs failed permanently unless "
        "includePermanent." + _ADMIN,
        Role.ADMIN,
        (Reply(200, "how many were touched", "DeadRetried"),),
        errors=(503,),
        body="BulkRetry",
        does='retry dead letters in bulk (`{"type"?, "effects"?: "keep"\\|"reset", '
        '"includePermanent"?}`)',
    ),
    Route(
        "GET",
        "/jobs/{job_id}",
        "job",
        "getJob",
        "The job's record",
        Role.READ,
        (Reply(200, "the record", "Job"),),
        errors=(404, 503),
        does="the full record",
    ),
    Route(
        "GET",
        "/jobs/{job_id}/status",
        "job_status",
        "getJobStatus",
        "The job's state in the short status shape",
        Role.READ,
        (Reply(200, "the status", "JobStatus"),),
        errors=(404, 503),
        does="`{jobId, type, state, createdAt, processedAt, failedReason, attempts}`",
    ),
    Route(
        "GET",
        "/jobs/{job_id}/events",
        "job_events",
        "getJobEvents",
        "The job's history, oldest first",
        Role.READ,
        (Reply(200, "the history", "JobEvents"),),
        errors=(404, 503),
        does="the job's history, oldest first",
    ),
    Route(
        "POST",
        "/jobs/{job_id}/retry",
        "job_retry",
        "retryJob",
        "Retry a failed or cancelled job (attempts reset)." + _ADMIN,
        Role.ADMIN,
        (Reply(200, "the record", "Job"),),
        errors=(404, 409, 503),
        body="Retry",
        does='`failed`/`cancelled` → `waiting`; body `{"effects": "keep"\\|"reset"}`',
    ),
    Route(
        "POST",
        "/jobs/{job_id}/cancel",
        "job_cancel",
        "cancelJob",
        "Cancel a waiting, delayed or retrying job." + _ADMIN,
        Role.ADMIN,
        (Reply(200, "the record", "Job"),),
        errors=(404, 409, 503),
        does="`waiting`/`delayed`/`retrying`/`claimed` → `cancelled`",
    ),
    Route(
        "GET",
        "/job-types",
        "job_types",
        "listJobTypes",
        "Job types: payload schema, queue, retry policy, time limit",
        Role.READ,
        (Reply(200, "the specs", "JobTypes"),),
        does="each type's queue, payload schema, retry policy and time limit",
    ),
    Route(
        "GET",
        "/schedules",
        "schedules",
        "listSchedules",
        "Schedules with their next run and last run's job",
        Role.READ,
        (Reply(200, "the schedules", "Schedules"),),
        errors=(503,),
        does="each schedule: cron (UTC), job type, payload, next run, last run's job and state",
    ),
    Route(
        "GET",
        "/workers",
        "workers",
        "listWorkers",
        "Live worker and scheduler processes",
        Role.READ,
        (Reply(200, "the processes", "Workers"),),
        errors=(503,),
        does="live worker and scheduler processes",
    ),
    Route(
        "GET",
        "/healthz",
        "health",
        "liveness",
        "The API process is alive (no Redis call)",
        Role.OPEN,
        (Reply(200, "alive", "Health"),),
        does="liveness (no Redis call)",
    ),
    Route(
        "GET",
        "/readyz",
        "readiness",
        "readiness",
        "Redis answers",
        Role.OPEN,
        (
            Reply(200, "ready", "Health"),
            Reply(503, "Redis does not answer", "Health", ("Retry-After",)),
        ),
        does="readiness: Redis answers",
    ),
    Route(
        "GET",
        "/metrics",
        "metrics",
        "metrics",
        "Prometheus exposition of the API's metrics",
        Role.OPEN,
        (Reply(200, "metrics", "", media="text/plain; version=0.0.4"),),
        does="Prometheus metrics",
    ),
    Route(
        "GET",
        "/openapi.json",
        "openapi",
        "openapi",
        "This document",
        Role.OPEN,
        (Reply(200, "the OpenAPI document", ""),),
        does="the OpenAPI 3.1 document",
    ),
)

_BY_TEMPLATE = {(route.path, route.method): route for route in ROUTES}


def route_for(template: str | None, method: str) -> Route | None:
    """The route Falcon matched (``req.uri_template``) for ``method`` (HEAD reads as GET)."""
    if template is None:
        return None
    return _BY_TEMPLATE.get((template, "GET" if method == "HEAD" else method))


def openapi_path(path: str) -> str:
    """``/jobs/{jobId}`` for ``/jobs/{job_id}``: path parameters in the contract's spelling."""
    return re.sub(r"\{(\w+)\}", lambda m: "{" + _camel(m.group(1)) + "}", path)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def routes_markdown() -> str:
    """The README's route table."""
    lines = ["| method and path | role | does |", "|---|---|---|"]
    for route in ROUTES:
        path = openapi_path(route.path).replace("{jobId}", "{id}")
        lines.append(f"| `{route.method} {path}` | {route.role} | {route.does} |")
    return "\n".join(lines) + "\n"
