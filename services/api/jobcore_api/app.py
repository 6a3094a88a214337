"""``create_app(settings)``: settings → runtime → resources → routes."""

from __future__ import annotations

import falcon

from jobcore.intake.admission import QueueAdmission
from jobcore.intake.limits import RequestLimits
from jobcore.intake.submission import SubmissionParser
from jobcore.model.catalogue import load_job_types
from jobcore.runtime import Runtime, build_runtime
from jobcore.scheduling.schedules import ScheduleBook
from jobcore.settings import Settings
from jobcore_api import auth, observability, openapi, problems, resources
from jobcore_api.query_parameters import QueryParameterCheck
from jobcore_api.schedules_resource import SchedulesResource


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> falcon.App:
    settings = settings or Settings.from_env()
    runtime = runtime or build_runtime(settings, job_types=load_job_types(settings.job_modules))
    jobs = runtime.jobs
    parser = SubmissionParser(
        runtime.job_types,
        require_idempotency_key=settings.require_idempotency_key,
        limits=RequestLimits.from_settings(settings),
    )
    api_keys = auth.parse_api_keys(settings.api_keys)
    # Telemetry first, so refused requests are counted and traced too.
    middleware: list[object] = [observability.RequestTelemetry()]
    if api_keys:
        middleware.append(auth.ApiKeyAuth(api_keys))
    middleware.append(QueryParameterCheck())

    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    problems.install(app)

    admission = QueueAdmission.from_settings(runtime.store, settings)
    app.add_route("/jobs", resources.JobsResource(jobs, parser, settings, admission))
    app.add_route("/jobs/stats", resources.StatsResource(jobs))
    app.add_route("/jobs/dead", resources.DeadLettersResource(jobs))
    app.add_route("/jobs/dead/retry", resources.DeadLettersRetryResource(jobs, settings))
    app.add_route("/jobs/{job_id}", resources.JobResource(jobs))
    app.add_route("/jobs/{job_id}/status", resources.JobStatusResource(jobs))
    app.add_route("/jobs/{job_id}/events", resources.JobEventsResource(jobs))
    app.add_route("/jobs/{job_id}/cancel", resources.JobCancelResource(jobs))
    app.add_route("/jobs/{job_id}/retry", resources.JobRetryResource(jobs, settings))
    app.add_route("/job-types", resources.JobTypesResource(jobs))
    app.add_route("/healthz", resources.HealthResource())
    app.add_route("/readyz", resources.ReadinessResource(jobs))
    app.add_route("/metrics", observability.MetricsResource(runtime))
    app.add_route("/workers", observability.WorkersResource(runtime))
    app.add_route("/schedules", SchedulesResource(ScheduleBook(runtime)))
    app.add_route(
        "/openapi.json",
        openapi.OpenApiResource(openapi.build_spec(settings, parser, auth_on=bool(api_keys))),
    )
    return app
