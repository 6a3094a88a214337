"""HTTP resources: each parses the request, calls ``jobcore``, and renders the answer."""

from __future__ import annotations

import re
from typing import Any

import falcon
import structlog

from jobcore.clock import now_ms
from jobcore.errors import InvalidRequest, Problem, quoted
from jobcore.intake.admission import QueueAdmission
from jobcore.intake.idempotency import CLIENT_NAMESPACE, parse_header
from jobcore.intake.listing import DEFAULT_PAGE_SIZE, filter_problems, raise_for
from jobcore.intake.operation_bodies import BULK_RETRY_SCHEMA, RETRY_SCHEMA, checked_body
from jobcore.intake.submission import SubmissionParser
from jobcore.jobs import Jobs
from jobcore.model.states import State
from jobcore.settings import Settings
from jobcore_api.problems import RETRY_AFTER_SECONDS
from jobcore_api.request_body import read_json

#: The query parameters of a listing.
LIST_PARAMETERS = frozenset({"state", "type", "limit", "cursor"})
#: The query parameters of the dead-letter listing (its state is fixed).
DEAD_LIST_PARAMETERS = frozenset({"type", "limit", "cursor"})
#: A whole number as a query parameter: ASCII digits only (``str.isdigit`` takes "²").
_DIGITS = re.compile(r"[0-9]{1,18}")

log = structlog.get_logger("jobcore.api")


def _job_path(job_id: str) -> str:
    return f"/jobs/{job_id}"


class ListQuery:
    """The ``state``, ``type``, ``limit`` and ``cursor`` query parameters, checked."""

    def __init__(self, req: falcon.Request, jobs: Jobs, *, state: str | None = None) -> None:
        raw_limit = req.get_param("limit")
        if raw_limit is None:
            limit = DEFAULT_PAGE_SIZE
        else:
            # Not a number is out of range: the same problem, the same message.
            limit = int(raw_limit) if _DIGITS.fullmatch(raw_limit) else -1
        filters, problems = filter_problems(
            jobs.job_types,
            state=state or req.get_param("state"),
            job_type=req.get_param("type"),
            limit=limit,
            max_limit=jobs.settings.max_list_limit,
        )
        self.state, self.job_type, self.limit = filters.state, filters.job_type, filters.limit
        self.cursor: int | None = None
        raw_cursor = req.get_param("cursor")
        if raw_cursor is not None:
            if not _DIGITS.fullmatch(raw_cursor):
                problems.append(
                    Problem("/query/cursor", "must be a nextCursor value from a previous page")
                )
            else:
                self.cursor = int(raw_cursor)
        raise_for(problems)

    def page(self, jobs: Jobs) -> dict[str, Any]:
        page = jobs.list(
            state=self.state, job_type=self.job_type, limit=self.limit, cursor=self.cursor
        )
        return {"items": [r.to_api() for r in page.items], "nextCursor": page.next_cursor}


class JobsResource:
    """``POST /jobs`` submits; ``GET /jobs`` lists."""

    query_parameters = {"GET": LIST_PARAMETERS}

    def __init__(
        self,
        jobs: Jobs,
        parser: SubmissionParser,
        settings: Settings,
        admission: QueueAdmission | None = None,
    ) -> None:
        self.jobs = jobs
        self.parser = parser
        self.settings = settings
        self.admission = admission

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, self.settings.max_body_bytes, self.settings.max_json_depth)
        header = req.get_header("Idempotency-Key")
        header_key = parse_header(header) if header is not None else None
        submission = self.parser.parse(body, header_key, now_ms=now_ms())
        if self.admission is not None:
            self.admission.check(submission.spec.queue)
        namespace = req.context.get("idempotency_namespace") or CLIENT_NAMESPACE
        accepted = self.jobs.submit(submission, namespace=namespace)
        resp.location = _job_path(accepted.job_id)
        resp.media = {"status": "accepted", "jobId": accepted.job_id, "state": accepted.state}
        if accepted.duplicate:
            resp.status = falcon.HTTP_200
            resp.media["duplicate"] = True
            resp.set_header("Idempotent-Replayed", "true")
        else:
            resp.status = falcon.HTTP_202

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = ListQuery(req, self.jobs).page(self.jobs)


class JobResource:
    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        resp.media = self.jobs.get(job_id).to_api()


class JobStatusResource:
    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        resp.media = self.jobs.get(job_id).to_status()


class JobEventsResource:
    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        resp.media = {"jobId": job_id, "items": self.jobs.events(job_id)}


class JobCancelResource:
    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    def on_post(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        resp.media = self.jobs.cancel(job_id).to_api()


class JobRetryResource:
    def __init__(self, jobs: Jobs, settings: Settings) -> None:
        self.jobs = jobs
        self.settings = settings

    def on_post(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        body = checked_body(RETRY_SCHEMA, self._body(req))
        reset = body.get("effects") == "reset"
        resp.media = self.jobs.retry(job_id, reset_effects=reset).to_api()

    def _body(self, req: falcon.Request) -> Any:
        if not req.content_length:
            return None
        return read_json(req, self.settings.max_body_bytes, self.settings.max_json_depth)


class StatsResource:
    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.jobs.stats()


class DeadLettersResource:
    """``GET /jobs/dead``: failed jobs, newest first, optionally of one type."""

    query_parameters = {"GET": DEAD_LIST_PARAMETERS, "DELETE": frozenset({"type"})}

    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = ListQuery(req, self.jobs, state=State.FAILED).page(self.jobs)

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Purge dead letters (optionally of one ``type``); says how many went."""
        query = ListQuery(req, self.jobs, state=State.FAILED)
        resp.media = {"purged": self.jobs.purge_dead(job_type=query.job_type)}


class DeadLettersRetryResource:
    """``POST /jobs/dead/retry``: retry dead letters in bulk; says how many were touched."""

    def __init__(self, jobs: Jobs, settings: Settings) -> None:
        self.jobs = jobs
        self.settings = settings

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        raw = (
            read_json(req, self.settings.max_body_bytes, self.settings.max_json_depth)
            if req.content_length
            else None
        )
        body = checked_body(BULK_RETRY_SCHEMA, raw)
        job_type = body.get("type")
        if job_type is not None:
            canonical = self.jobs.job_types.canonical_name(job_type)
            if canonical is None:
                raise InvalidRequest([Problem("/type", f"unknown job type {quoted(job_type)}")])
            job_type = canonical
        done = self.jobs.retry_dead(
            job_type=job_type,
            reset_effects=body.get("effects") == "reset",
            include_permanent=body.get("includePermanent", False),
        )
        resp.media = done.to_api()


class JobTypesResource:
    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"items": [spec.to_api() for spec in self.jobs.job_types.specs]}


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class ReadinessResource:
    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            self.jobs.store.ping()
        except Exception as exc:
            # The cause goes to the log; the public answer names no host or port.
            log.warning("not ready", error=str(exc))
            resp.status = falcon.HTTP_503
            resp.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
            resp.media = {"status": "unavailable", "redis": "unreachable"}
            return
        resp.media = {"status": "ready", "redis": "ok"}
