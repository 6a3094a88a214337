"""HTTP resources: each parses the request, calls ``jobcore``, and renders the answer.

Which resource serves which route, with which role and parameters, is the route table's
(``routes.py``); the query check and authentication run before a responder is called.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import falcon
from falcon.asgi import Request, Response

from jobcore.async_jobs import AsyncJobs
from jobcore.errors import InvalidRequest, Problem, quoted
from jobcore.intake.idempotency import CLIENT_NAMESPACE, parse_header
from jobcore.intake.listing import (
    CURSOR_RULE,
    DEFAULT_PAGE_SIZE,
    filter_problems,
    parse_cursor,
    raise_for,
)
from jobcore.intake.operation_bodies import BULK_RETRY_SCHEMA, RETRY_SCHEMA, checked_body
from jobcore.jobs import purged_view
from jobcore.model.states import State
from jobcore.scheduling.schedules import ScheduleBook
from jobcore.settings import Settings
from jobcore.store.queries import events_view
from jobcore.submit_flow import SubmitFlow
from jobcore_api.observability import STORE_OUTAGE
from jobcore_api.problems import RETRY_AFTER_SECONDS
from jobcore_api.request_body import read_json

#: A whole number as a query parameter: ASCII digits only (``str.isdigit`` takes "²").
_DIGITS = re.compile(r"[0-9]{1,18}")

#: The JSON Schema of ``GET /healthz`` and ``GET /readyz`` bodies.
HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}, "redis": {"type": "string"}},
}


def _job_path(job_id: str) -> str:
    return f"/jobs/{job_id}"


async def _body(req: Request, settings: Settings) -> Any:
    """The request's JSON body, or ``None`` when it sent none (a chunked body is read too)."""
    chunked = "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    if not req.content_length and not chunked:
        return None
    return await read_json(req, settings.max_body_bytes, settings.max_json_depth)


class ListQuery:
    """The ``state``, ``type``, ``limit`` and ``cursor`` query parameters, checked."""

    def __init__(self, req: Request, jobs: AsyncJobs, *, state: str | None = None) -> None:
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
            self.cursor = parse_cursor(raw_cursor)
            if self.cursor is None:
                problems.append(Problem("/query/cursor", CURSOR_RULE))
        raise_for(problems)

    async def page(self, jobs: AsyncJobs) -> dict[str, Any]:
        page = await jobs.list(
            state=self.state, job_type=self.job_type, limit=self.limit, cursor=self.cursor
        )
        return page.to_api()


class JobsResource:
    """``POST /jobs`` submits; ``GET /jobs`` lists."""

    def __init__(self, jobs: AsyncJobs, flow: SubmitFlow, settings: Settings) -> None:
        self.jobs = jobs
        self.flow = flow
        self.settings = settings

    async def on_post(self, req: Request, resp: Response) -> None:
        body = await read_json(req, self.settings.max_body_bytes, self.settings.max_json_depth)
        header = req.get_header("Idempotency-Key")
        accepted = await self.flow.submit_on_loop(
            self.jobs,
            body,
            header_key=parse_header(header) if header is not None else None,
            namespace=req.context.get("idempotency_namespace") or CLIENT_NAMESPACE,
        )
        resp.location = _job_path(accepted.job_id)
        resp.media = accepted.to_api()
        if accepted.duplicate:
            resp.status = falcon.HTTP_200
            resp.set_header("Idempotent-Replayed", "true")
        else:
            resp.status = falcon.HTTP_202

    async def on_get(self, req: Request, resp: Response) -> None:
        resp.media = await ListQuery(req, self.jobs).page(self.jobs)


class JobResource:
    def __init__(self, jobs: AsyncJobs) -> None:
        self.jobs = jobs

    async def on_get(self, req: Request, resp: Response, job_id: str) -> None:
        resp.media = (await self.jobs.get(job_id)).to_api()


class JobStatusResource:
    def __init__(self, jobs: AsyncJobs) -> None:
        self.jobs = jobs

    async def on_get(self, req: Request, resp: Response, job_id: str) -> None:
        resp.media = (await self.jobs.get(job_id)).to_status()


class JobEventsResource:
    def __init__(self, jobs: AsyncJobs) -> None:
        self.jobs = jobs

    async def on_get(self, req: Request, resp: Response, job_id: str) -> None:
        resp.media = events_view(job_id, await self.jobs.events(job_id))


class JobCancelResource:
    def __init__(self, jobs: AsyncJobs) -> None:
        self.jobs = jobs

    async def on_post(self, req: Request, resp: Response, job_id: str) -> None:
        resp.media = (await self.jobs.cancel(job_id)).to_api()


class JobRetryResource:
    def __init__(self, jobs: AsyncJobs, settings: Settings) -> None:
        self.jobs = jobs
        self.settings = settings

    async def on_post(self, req: Request, resp: Response, job_id: str) -> None:
        body = checked_body(RETRY_SCHEMA, await _body(req, self.settings))
        reset = body.get("effects") == "reset"
        resp.media = (await self.jobs.retry(job_id, reset_effects=reset)).to_api()


class StatsResource:
    def __init__(self, jobs: AsyncJobs) -> None:
        self.jobs = jobs

    async def on_get(self, req: Request, resp: Response) -> None:
        resp.media = await self.jobs.stats()


class DeadLettersResource:
    """``GET /jobs/dead``: failed jobs, newest first; ``DELETE``: purge them."""

    def __init__(self, jobs: AsyncJobs) -> None:
        self.jobs = jobs

    async def on_get(self, req: Request, resp: Response) -> None:
        resp.media = await ListQuery(req, self.jobs, state=State.FAILED).page(self.jobs)

    async def on_delete(self, req: Request, resp: Response) -> None:
        """Purge dead letters (optionally of one ``type``); says how many went."""
        query = ListQuery(req, self.jobs, state=State.FAILED)
        resp.media = purged_view(await self.jobs.purge_dead(job_type=query.job_type))


class DeadLettersRetryResource:
    """``POST /jobs/dead/retry``: retry dead letters in bulk; says how many were touched."""

    def __init__(self, jobs: AsyncJobs, settings: Settings) -> None:
        self.jobs = jobs
        self.settings = settings

    async def on_post(self, req: Request, resp: Response) -> None:
        body = checked_body(BULK_RETRY_SCHEMA, await _body(req, self.settings))
        job_type = body.get("type")
        if job_type is not None:
            canonical = self.jobs.job_types.canonical_name(job_type)
            if canonical is None:
                raise InvalidRequest([Problem("/type", f"unknown job type {quoted(job_type)}")])
            job_type = canonical
        done = await self.jobs.retry_dead(
            job_type=job_type,
            reset_effects=body.get("effects") == "reset",
            include_permanent=body.get("includePermanent", False),
        )
        resp.media = done.to_api()


class JobTypesResource:
    def __init__(self, jobs: AsyncJobs) -> None:
        self.jobs = jobs

    async def on_get(self, req: Request, resp: Response) -> None:
        resp.media = {"items": [spec.to_api() for spec in self.jobs.job_types.specs]}


class SchedulesResource:
    """``GET /schedules``: each schedule, its next run and its last run's job and state."""

    def __init__(self, book: ScheduleBook, jobs: AsyncJobs) -> None:
        self.book = book
        self.jobs = jobs

    async def on_get(self, req: Request, resp: Response) -> None:
        runs = await self.jobs.executor.run(self.book.reading_last_runs())
        resp.media = {"items": self.book.describe(datetime.now(UTC), runs)}


class HealthResource:
    async def on_get(self, req: Request, resp: Response) -> None:
        resp.media = {"status": "ok"}


class ReadinessResource:
    """``GET /readyz``: whether Redis answers; an outage is one log line (``STORE_OUTAGE``,
    shared with scrapes), not one per probe."""

    def __init__(self, jobs: AsyncJobs) -> None:
        self.jobs = jobs

    async def on_get(self, req: Request, resp: Response) -> None:
        began = STORE_OUTAGE.began()
        try:
            await self.jobs.ping()
        except Exception as exc:
            # The cause goes to the log (once per outage); the public answer names no host.
            STORE_OUTAGE.failed(exc)
            resp.status = falcon.HTTP_503
            resp.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
            resp.media = {"status": "unavailable", "redis": "unreachable"}
            return
        STORE_OUTAGE.succeeded(began)
        resp.media = {"status": "ready", "redis": "ok"}
