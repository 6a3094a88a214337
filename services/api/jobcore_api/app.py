"""``create_app(settings)``: settings → runtime → resources → the routes of the table.

The app is Falcon's ASGI app: every Redis call of a request is awaited on the event loop
(``AsyncJobs`` over ``redis.asyncio``), so a slow Redis or a slow client holds no thread."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from jobcore import json_text
from jobcore.async_jobs import AsyncJobs
from jobcore.model.catalogue import load_job_types
from jobcore.outages import set_process_kind
from jobcore.runtime import Runtime, build_runtime
from jobcore.scheduling.schedules import ScheduleBook
from jobcore.settings import Settings
from jobcore.store.async_executor import AsyncExecutor
from jobcore.store.connection import connect_async
from jobcore.store.replication import ReplicaAck
from jobcore.submit_flow import SubmitFlow
from jobcore.telemetry.metric_tally import Tally
from jobcore.telemetry.tracing import redis_commands_traced
from jobcore_api import auth, observability, openapi, problems, resources
from jobcore_api.query_parameters import QueryParameterCheck
from jobcore_api.request_body import NoBodyCheck
from jobcore_api.routes import ROUTES


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> falcon.asgi.App:
    settings = settings or Settings.from_env()
    set_process_kind("api")
    runtime = runtime or build_runtime(settings, job_types=load_job_types(settings.job_modules))
    executor = AsyncExecutor(
        connect_async(settings),
        ReplicaAck.from_settings(settings),
        traced_commands=redis_commands_traced(),
    )
    jobs = AsyncJobs(runtime.jobs.operations, executor)
    flow = SubmitFlow.for_runtime(runtime, settings)
    api_keys = auth.parse_api_keys(settings.api_keys)
    # Telemetry first, so refused requests are counted and traced too; then who may call,
    # then what the call may carry.
    tally = Tally()
    middleware: list[object] = [
        observability.RequestTelemetry(tally),
        RedisClientClosing(executor),
    ]
    if api_keys:
        middleware.append(auth.ApiKeyAuth(api_keys))
    middleware.append(QueryParameterCheck())
    middleware.append(NoBodyCheck(settings.max_body_bytes))

    app = falcon.asgi.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    # Answers are compact JSON written by orjson (``jobcore.json_text.answer``).
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(
        dumps=json_text.answer
    )
    problems.install(app)
    spec = openapi.build_spec(settings, flow.parser, auth_on=bool(api_keys))
    serving: dict[str, Any] = {
        "jobs": resources.JobsResource(jobs, flow, settings),
        "stats": resources.StatsResource(jobs),
        "dead_letters": resources.DeadLettersResource(jobs),
        "dead_letters_retry": resources.DeadLettersRetryResource(jobs, settings),
        "job": resources.JobResource(jobs),
        "job_status": resources.JobStatusResource(jobs),
        "job_events": resources.JobEventsResource(jobs),
        "job_cancel": resources.JobCancelResource(jobs),
        "job_retry": resources.JobRetryResource(jobs, settings),
        "job_types": resources.JobTypesResource(jobs),
        "schedules": resources.SchedulesResource(ScheduleBook(runtime), jobs),
        "workers": observability.WorkersResource(jobs),
        "health": resources.HealthResource(),
        "readiness": resources.ReadinessResource(jobs),
        "metrics": observability.MetricsResource(jobs, tally),
        "openapi": openapi.OpenApiResource(spec),
    }
    add_routes(app, serving)
    return app


def add_routes(app: falcon.asgi.App, serving: dict[str, Any]) -> None:
    """Register each route of the table with the resource it names; a route whose resource
    lacks its responder, or a path served by two resources, is a bug caught at start."""
    by_path: dict[str, str] = {}
    for route in ROUTES:
        resource = serving[route.resource]
        if not hasattr(resource, f"on_{route.method.lower()}"):
            raise TypeError(f"{route.resource} has no on_{route.method.lower()}")
        if by_path.setdefault(route.path, route.resource) != route.resource:
            raise TypeError(f"{route.path} is served by {by_path[route.path]} and {route.resource}")
    for path, name in by_path.items():
        resource = serving[name]
        if hasattr(resource, "on_get") and not hasattr(resource, "on_head"):
            # HEAD is GET without the body (uptime checks use it); auth reads it as GET.
            resource.on_head = resource.on_get
        taken = {route.method for route in ROUTES if route.path == path}
        resource.on_options = _options_answer(taken)
        app.add_route(path, resource)


#: The order methods are named in ``Allow``, as Falcon names them in a ``405``.
_METHOD_ORDER = tuple(falcon.constants.COMBINED_METHODS)


def _options_answer(taken: set[str]) -> Any:
    """``OPTIONS``: ``204`` naming the methods the path takes (Falcon's default answers
    ``200`` with an empty "JSON" body and leaves ``OPTIONS`` out of ``Allow``)."""
    taken = taken | {"OPTIONS"} | ({"HEAD"} if "GET" in taken else set())
    allow = ", ".join(method for method in _METHOD_ORDER if method in taken)

    async def on_options(
        req: falcon.asgi.Request, resp: falcon.asgi.Response, **params: Any
    ) -> None:
        resp.status = falcon.HTTP_204
        resp.set_header("Allow", allow)

    return on_options


class RedisClientClosing:
    """ASGI lifespan middleware: the app's Redis connections are closed when the server
    stops (their pool belongs to the server's event loop)."""

    def __init__(self, executor: AsyncExecutor) -> None:
        self.executor = executor

    async def process_shutdown(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        await self.executor.close()
