"""The OpenAPI 3.1 description of the HTTP contract, served at ``GET /openapi.json``.

Built from the same objects the app uses (the submission parser's envelope schema and
limits, the job states), so the spec cannot drift from what the resources accept.
"""

from __future__ import annotations

import json
from typing import Any

import falcon

from jobcore.intake.operation_bodies import BULK_RETRY_SCHEMA, RETRY_SCHEMA
from jobcore.intake.submission import SubmissionParser
from jobcore.model.states import ALL_STATES
from jobcore.settings import Settings
from jobcore.telemetry.metrics import CONTENT_TYPE_LATEST

PROBLEM_JSON = "application/problem+json"
#: Present only on a record Redis holds damaged: the fields that could not be read.
RECORD_ERRORS = {
    "type": "array",
    "items": {"type": "string"},
    "description": "present only when the stored record is damaged: the fields that could "
    "not be read (shown with their defaults)",
}

#: The seeds' request bodies, offered as examples of ``POST /jobs``.
SUBMIT_EXAMPLES: dict[str, dict[str, Any]] = {
    "welcomeEmail": {
        "summary": "seed 000: a welcome e-mail",
        "value": {
            "type": "welcome-email",
            "payload": {
                "email": "Albert@example.com",
                "name": "Albert",
                "message": "Congratulations! Your background job system is live.",
            },
        },
    },
    "welcomeEmailIdempotent": {
        "summary": "seed 001: with an idempotency key",
        "value": {
            "type": "welcome-email",
            "idempotencyKey": "welcome-email-anoop-v1",
            "payload": {
                "email": "anoop@example.com",
                "name": "Anoop",
                "message": "Background job system is live!",
            },
        },
    },
    "csvGeneration": {
        "summary": "seed 004: a CSV file from a flat object",
        "value": {"type": "csv-generation", "payload": {"name": "Alice", "score": 95}},
    },
    "emailSend": {
        "summary": "seed 004: EMAIL_SEND",
        "value": {
            "type": "EMAIL_SEND",
            "payload": {
                "to": "test@example.com",
                "subject": "Job Notification",
                "body": "Your job has been processed successfully.",
            },
        },
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _type_names(parser: SubmissionParser) -> list[str]:
    return [name for spec in parser.job_types.specs for name in (spec.name, *spec.aliases)]


def _submission(parser: SubmissionParser) -> dict[str, Any]:
    """The parser's envelope schema, and each job type's payload schema under its names."""
    per_type = [
        {
            "title": spec.name,
            "properties": {
                "type": {"enum": [spec.name, *spec.aliases]},
                "payload": spec.payload_schema,
            },
        }
        for spec in parser.job_types.specs
    ]
    return {"allOf": [parser.schema, {"oneOf": per_type}]}


def _schemas(parser: SubmissionParser) -> dict[str, Any]:
    time = {
        "type": "string",
        "format": "date-time",
        "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$",
        "description": "UTC, RFC 3339 with milliseconds and Z",
    }
    count = {"type": "integer", "minimum": 0}
    counts = {"type": "object", "additionalProperties": count}
    return {
        "Time": time,
        "JobId": {"type": "string", "description": "opaque, URL-safe"},
        "State": {"type": "string", "enum": list(ALL_STATES)},
        "Submission": _submission(parser),
        "Accepted": {
            "type": "object",
            "required": ["status", "jobId", "state"],
            "properties": {
                "status": {"const": "accepted"},
                "jobId": _ref("JobId"),
                "state": _ref("State"),
                "duplicate": {"const": True, "description": "present on idempotent replays"},
            },
        },
        "Job": {
            "type": "object",
            "required": [
                "jobId",
                "type",
                "queue",
                "payload",
                "state",
                "attempts",
                "maxAttempts",
                "deliveries",
                "progress",
                "result",
                "failedReason",
                "createdAt",
                "processedAt",
                "finishedAt",
                "nextAttemptAt",
                "traceId",
            ],
            "properties": {
                "jobId": _ref("JobId"),
                "type": {"type": "string"},
                "queue": {"type": "string"},
                "payload": {"type": "object"},
                "state": _ref("State"),
                "attempts": count,
                "maxAttempts": {"type": "integer", "minimum": 1},
                "deliveries": count,
                "maxDeliveries": {"type": "integer", "minimum": 1},
                "progress": {"type": "integer", "minimum": 0, "maximum": 100},
                "result": {"description": "what the job returned; null until completed"},
                "failedReason": {"type": ["string", "null"]},
                "lastError": {"type": ["string", "null"]},
                "createdAt": _ref("Time"),
                "processedAt": _nullable(_ref("Time")),
                "finishedAt": _nullable(_ref("Time")),
                "nextAttemptAt": _nullable(_ref("Time")),
                "runAt": _nullable(_ref("Time")),
                "traceId": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "recordErrors": RECORD_ERRORS,
            },
        },
        "JobStatus": {
            "type": "object",
            "required": [
                "jobId",
                "type",
                "state",
                "createdAt",
                "processedAt",
                "failedReason",
                "attempts",
            ],
            "properties": {
                "jobId": _ref("JobId"),
                "type": {"type": "string"},
                "state": _ref("State"),
                "createdAt": _ref("Time"),
                "processedAt": _nullable(_ref("Time")),
                "failedReason": {"type": ["string", "null"]},
                "attempts": count,
                "recordErrors": RECORD_ERRORS,
            },
        },
        "JobPage": {
            "type": "object",
            "required": ["items", "nextCursor"],
            "properties": {
                "items": {"type": "array", "items": _ref("Job")},
                "nextCursor": {
                    "type": ["string", "null"],
                    "description": "pass as cursor for the next (older) page",
                },
            },
        },
        "JobEvents": {
            "type": "object",
            "required": ["jobId", "items"],
            "properties": {
                "jobId": _ref("JobId"),
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["at", "event"],
                        "properties": {
                            "at": {
                                **_nullable(_ref("Time")),
                                "description": "null only on an undecodable event",
                            },
                            "event": {"type": "string"},
                        },
                    },
                },
            },
        },
        "Stats": {
            "type": "object",
            "required": ["states", "types", "queues", "delayed", "deadLetters", "total"],
            "properties": {
                "states": counts,
                "types": counts,
                "queues": counts,
                "delayed": count,
                "retrying": count,
                "deadLetters": count,
                "total": count,
            },
        },
        "JobTypes": {
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": {
                    "type": "array",
                    "items": {
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
                    },
                }
            },
        },
        "Schedules": {
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "description": "name, cron (UTC), job type, next run, last run's job",
                        "required": ["name", "cron", "jobType", "payload", "nextRunAt", "lastRun"],
                        "properties": {
                            "name": {"type": "string"},
                            "cron": {"type": "string"},
                            "timezone": {"const": "UTC"},
                            "jobType": {"type": "string"},
                            "payload": {"type": "object"},
                            "description": {"type": "string"},
                            "nextRunAt": _ref("Time"),
                            "lastRun": {
                                "description": "the latest fire time, its job and the job's "
                                "state (null once the job was pruned); null before any run",
                                "type": ["object", "null"],
                                "required": ["fireTime", "jobId", "state"],
                                "properties": {
                                    "fireTime": _ref("Time"),
                                    "jobId": {"type": "string"},
                                    "state": {"type": ["string", "null"]},
                                },
                            },
                        },
                    },
                }
            },
        },
        "Workers": {
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "kind": {"type": "string"},
                            "host": {"type": "string"},
                            "pid": {"type": "integer"},
                            "queues": {"type": "array", "items": {"type": "string"}},
                            "inFlight": count,
                            "lastHeartbeat": _nullable(_ref("Time")),
                        },
                    },
                }
            },
        },
        "DeadRetried": {
            "type": "object",
            "required": ["retried", "skipped", "skippedByFailure"],
            "properties": {
                "retried": count,
                "skipped": count,
                "skippedByFailure": {
                    **counts,
                    "description": "jobs left alone, by why they failed: human-check (an "
                    "unfinished effect; retry with effects=reset after checking), permanent "
                    "(retry with includePermanent)",
                },
            },
        },
        "DeadPurged": {
            "type": "object",
            "required": ["purged"],
            "properties": {"purged": count},
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string"}, "redis": {"type": "string"}},
        },
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details",
            "required": ["type", "title", "status"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
            },
        },
        "ValidationProblem": {
            "allOf": [
                _ref("Problem"),
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
        },
    }


def _problem(description: str, schema: str = "Problem", **headers: Any) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": _ref(schema)}},
    }
    if headers:
        response["headers"] = headers
    return response


def _json(description: str, schema: str, **headers: Any) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }
    if headers:
        response["headers"] = headers
    return response


_RETRY_AFTER = {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}
_LOCATION = {"description": "the job's URL", "schema": {"type": "string"}}

_RESPONSES: dict[str, dict[str, Any]] = {
    "BadRequest": _problem(
        "the body is not usable JSON (syntax, bad UTF-8, NaN/Infinity, a number that "
        "overflows, a lone surrogate, a duplicate key, nesting too deep, a NUL character), "
        "or the request contradicts itself"
    ),
    "Unauthorized": _problem(
        "API keys are on and the request carries no known key",
        **{"WWW-Authenticate": {"schema": {"type": "string"}}},
    ),
    "Forbidden": _problem("the API key's role may not do this (it needs admin)"),
    "NotFound": _problem("no job has this id"),
    "Conflict": _problem("the job's state does not allow this operation"),
    "TooLarge": _problem("the body is over the size limit (JOBCORE_MAX_BODY_BYTES)"),
    "UnsupportedMediaType": _problem("the body is not sent as JSON"),
    "Invalid": _problem(
        "the request parsed but breaks a schema or a limit; each problem is listed",
        "ValidationProblem",
    ),
    "Unavailable": _problem(
        "Redis is unreachable or full, the job's queue is deeper than "
        "JOBCORE_MAX_QUEUE_DEPTH, or fewer replicas than JOBCORE_MIN_REPLICAS_ACK confirmed "
        "the write in time (then the job may exist: `jobId` names it and `mayExist` is "
        "true); retry after Retry-After seconds (with the same idempotency key, for a "
        "submission)",
        **{"Retry-After": _RETRY_AFTER},
    ),
}


def _responses(codes: str, ok: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
    """``ok`` plus the shared error responses named by ``codes`` (space-separated)."""
    names = {
        "400": "BadRequest",
        "401": "Unauthorized",
        "403": "Forbidden",
        "404": "NotFound",
        "409": "Conflict",
        "413": "TooLarge",
        "415": "UnsupportedMediaType",
        "422": "Invalid",
        "503": "Unavailable",
    }
    responses = dict(ok)
    responses.update(extra or {})
    for code in codes.split():
        responses[code] = {"$ref": f"#/components/responses/{names[code]}"}
    return responses


def _job_id_param() -> dict[str, Any]:
    return {
        "name": "jobId",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    }


def _list_params(
    settings: Settings, parser: SubmissionParser, *, with_state: bool
) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    if with_state:
        params.append(
            {"name": "state", "in": "query", "schema": {"type": "string", "enum": list(ALL_STATES)}}
        )
    params += [
        {
            "name": "type",
            "in": "query",
            "description": "a job type name or alias",
            "schema": {"type": "string", "enum": _type_names(parser)},
        },
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": settings.max_list_limit},
        },
        {
            "name": "cursor",
            "in": "query",
            "description": "nextCursor of the previous page",
            "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
        },
    ]
    return params


def _body(schema: dict[str, Any], *, required: bool, **extra: Any) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema, **extra}
    return {"required": required, "content": {"application/json": media}}


def _paths(settings: Settings, parser: SubmissionParser) -> dict[str, Any]:
    admin = "Needs an admin API key when API keys are on."
    job_ops = "400 401 403 404 409 413 415 422 503"
    return {
        "/jobs": {
            "post": {
                "operationId": "submitJob",
                "summary": "Submit a job; answers at once",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "description": "a quoted structured-field string or a bare key; "
                        "the same as idempotencyKey in the body if both are sent",
                        "schema": {"type": "string", "maxLength": 257},
                    }
                ],
                "requestBody": _body(_ref("Submission"), required=True, examples=SUBMIT_EXAMPLES),
                "responses": _responses(
                    "400 401 403 413 415 422 503",
                    {
                        "202": _json("accepted", "Accepted", Location=_LOCATION),
                        "200": _json(
                            "an idempotent replay: the job first created with this key",
                            "Accepted",
                            Location=_LOCATION,
                            **{
                                "Idempotent-Replayed": {
                                    "schema": {"type": "string", "const": "true"}
                                }
                            },
                        ),
                    },
                ),
            },
            "get": {
                "operationId": "listJobs",
                "summary": "Jobs, newest first, by state and/or type",
                "parameters": _list_params(settings, parser, with_state=True),
                "responses": _responses("401 422 503", {"200": _json("a page", "JobPage")}),
            },
        },
        "/jobs/stats": {
            "get": {
                "operationId": "jobStats",
                "summary": "Counts per state and type, queue depths, delayed and dead letters",
                "responses": _responses("401 503", {"200": _json("the counts", "Stats")}),
            }
        },
        "/jobs/dead": {
            "get": {
                "operationId": "listDeadLetters",
                "summary": "Failed jobs, newest first",
                "parameters": _list_params(settings, parser, with_state=False),
                "responses": _responses("401 422 503", {"200": _json("a page", "JobPage")}),
            },
            "delete": {
                "operationId": "purgeDeadLetters",
                "summary": "Delete dead letters (of one type); says how many. " + admin,
                "parameters": _list_params(settings, parser, with_state=False)[:1],
                "responses": _responses(
                    "401 403 422 503", {"200": _json("how many went", "DeadPurged")}
                ),
            },
        },
        "/jobs/dead/retry": {
            "post": {
                "operationId": "retryDeadLetters",
                "summary": "Retry dead letters in bulk (at most 1,000 per call, oldest first); "
                "jobs that need a human check are skipped unless effects=reset, jobs failed "
                "permanently unless includePermanent. " + admin,
                "requestBody": _body(
                    {
                        **BULK_RETRY_SCHEMA,
                        "properties": {
                            **BULK_RETRY_SCHEMA["properties"],
                            "type": {"type": "string", "enum": _type_names(parser)},
                        },
                    },
                    required=False,
                ),
                "responses": _responses(
                    "400 401 403 413 415 422 503",
                    {"200": _json("how many were touched", "DeadRetried")},
                ),
            }
        },
        "/jobs/{jobId}": {
            "parameters": [_job_id_param()],
            "get": {
                "operationId": "getJob",
                "summary": "The job's record",
                "responses": _responses("401 404 503", {"200": _json("the record", "Job")}),
            },
        },
        "/jobs/{jobId}/status": {
            "parameters": [_job_id_param()],
            "get": {
                "operationId": "getJobStatus",
                "summary": "The job's state in seed 000's shape",
                "responses": _responses("401 404 503", {"200": _json("the status", "JobStatus")}),
            },
        },
        "/jobs/{jobId}/events": {
            "parameters": [_job_id_param()],
            "get": {
                "operationId": "getJobEvents",
                "summary": "The job's history, oldest first",
                "responses": _responses("401 404 503", {"200": _json("the history", "JobEvents")}),
            },
        },
        "/jobs/{jobId}/retry": {
            "parameters": [_job_id_param()],
            "post": {
                "operationId": "retryJob",
                "summary": "Retry a failed or cancelled job (attempts reset). " + admin,
                "requestBody": _body(RETRY_SCHEMA, required=False),
                "responses": _responses(job_ops, {"200": _json("the record", "Job")}),
            },
        },
        "/jobs/{jobId}/cancel": {
            "parameters": [_job_id_param()],
            "post": {
                "operationId": "cancelJob",
                "summary": "Cancel a waiting, delayed or retrying job. " + admin,
                "responses": _responses("401 403 404 409 503", {"200": _json("the record", "Job")}),
            },
        },
        "/job-types": {
            "get": {
                "operationId": "listJobTypes",
                "summary": "Job types: payload schema, queue, retry policy, time limit",
                "responses": _responses("401", {"200": _json("the specs", "JobTypes")}),
            }
        },
        "/schedules": {
            "get": {
                "operationId": "listSchedules",
                "summary": "Schedules with their next run and last run's job",
                "responses": _responses("401 503", {"200": _json("the schedules", "Schedules")}),
            }
        },
        "/workers": {
            "get": {
                "operationId": "listWorkers",
                "summary": "Live worker and scheduler processes",
                "responses": _responses("401 503", {"200": _json("the processes", "Workers")}),
            }
        },
        "/healthz": {
            "get": {
                "operationId": "liveness",
                "summary": "The API process is alive (no Redis call)",
                "security": [],
                "responses": {"200": _json("alive", "Health")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readiness",
                "summary": "Redis answers",
                "security": [],
                "responses": {
                    "200": _json("ready", "Health"),
                    "503": _json(
                        "Redis does not answer", "Health", **{"Retry-After": _RETRY_AFTER}
                    ),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus exposition of the API's metrics",
                "security": [],
                "responses": {
                    "200": {
                        "description": "metrics",
                        "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "the OpenAPI document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }


def build_spec(settings: Settings, parser: SubmissionParser, *, auth_on: bool) -> dict[str, Any]:
    """The whole document for this app's settings (limits, whether API keys are on)."""
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Jobcore",
            "version": "1",
            "description": (
                "Background jobs over HTTP. Times are UTC RFC 3339 with milliseconds and Z; "
                "errors are RFC 9457 problem details. Bodies are limited to "
                f"{settings.max_body_bytes} bytes and {settings.max_json_depth} levels of "
                "nesting."
            ),
        },
        "paths": _paths(settings, parser),
        "components": {
            "schemas": _schemas(parser),
            "responses": _RESPONSES,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
    if auth_on:
        spec["security"] = [{"bearer": []}, {"apiKey": []}]
    return spec


class OpenApiResource:
    """``GET /openapi.json``: the document, rendered once."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.body = json.dumps(spec, separators=(",", ":"))

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.text = self.body
