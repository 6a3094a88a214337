"""``create_app(settings)``: settings → runtime → resources → routes."""

from __future__ import annotations

import falcon

from jobcore.runtime import Runtime, build_runtime
from jobcore.settings import Settings
from jobcore.specs import load_job_types
from jobcore.submission import SubmissionParser
from jobcore_api import problems, resources


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> falcon.App:
    settings = settings or Settings.from_env()
    runtime = runtime or build_runtime(settings, job_types=load_job_types())
    jobs = runtime.jobs
    parser = SubmissionParser(
        runtime.job_types, require_idempotency_key=settings.require_idempotency_key
    )

    app = falcon.App()
    app.req_options.strip_url_path_trailing_slash = True
    problems.install(app)

    app.add_route("/jobs", resources.JobsResource(jobs, parser, settings))
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
    return app
