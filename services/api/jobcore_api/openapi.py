"""The OpenAPI 3.1 document of the HTTP contract, served at ``GET /openapi.json``.

Rendered from the route table (``routes.py``) and the schemas kept beside the code that
builds or reads each body (the record's beside ``JobRecord.to_api``, the submission's in the
parser); what is written here by hand is only what no code can say: descriptions of the
shared error answers, the header parameter and the request examples.
"""

from __future__ import annotations

import json
from typing import Any

import falcon
from falcon.asgi import Request, Response

from jobcore.intake.listing import DEFAULT_PAGE_SIZE
from jobcore.intake.operation_bodies import BULK_RETRY_SCHEMA, RETRY_SCHEMA
from jobcore.intake.submission import SubmissionParser
from jobcore.jobs import ACCEPTED_SCHEMA, BULK_RETRY_RESULT_SCHEMA, PURGED_SCHEMA
from jobcore.model.records import JOB_SCHEMA, JOB_STATUS_SCHEMA
from jobcore.model.specs import JOB_TYPE_SCHEMA
from jobcore.model.states import ALL_STATES
from jobcore.presence import PROCESS_SCHEMA
from jobcore.scheduling.schedules import SCHEDULE_SCHEMA
from jobcore.settings import Settings
from jobcore.store.queries import EVENTS_SCHEMA, PAGE_SCHEMA, STATS_SCHEMA
from jobcore_api.problems import PROBLEM_JSON, PROBLEM_SCHEMA, VALIDATION_PROBLEM_SCHEMA
from jobcore_api.resources import HEALTH_SCHEMA
from jobcore_api.routes import ROUTES, Role, Route, openapi_path

#: Request bodies offered as examples of ``POST /jobs``: the users' own requests.
SUBMIT_EXAMPLES: dict[str, dict[str, Any]] = {
    "welcomeEmail": {
        "summary": "a welcome e-mail",
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
        "summary": "a welcome e-mail with an idempotency key",
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
        "summary": "a CSV file from a flat object",
        "value": {"type": "csv-generation", "payload": {"name": "Alice", "score": 95}},
    },
    "emailSend": {
        "summary": "an e-mail, by its alias EMAIL_SEND",
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
#: The ``Idempotency-Key`` header of a submission.
IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "description": "a quoted structured-field string or a bare key (ASCII); the same as "
    "idempotencyKey in the body if both are sent",
    "schema": {"type": "string", "maxLength": 257},
}
#: The path parameter of every ``/jobs/{jobId}...`` route.
JOB_ID_PARAMETER = {
    "name": "jobId",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


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


def _items(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": schema}},
    }


def _schemas(parser: SubmissionParser) -> dict[str, Any]:
    """Each body's schema, taken from the code that builds or reads that body."""
    bulk_retry = dict(BULK_RETRY_SCHEMA)
    bulk_retry["properties"] = {
        **BULK_RETRY_SCHEMA["properties"],
        "type": {"type": "string", "enum": _type_names(parser)},
    }
    return {
        "Submission": _submission(parser),
        "Accepted": ACCEPTED_SCHEMA,
        "Job": JOB_SCHEMA,
        "JobStatus": JOB_STATUS_SCHEMA,
        "JobPage": PAGE_SCHEMA,
        "JobEvents": EVENTS_SCHEMA,
        "Stats": STATS_SCHEMA,
        "JobTypes": _items(JOB_TYPE_SCHEMA),
        "Schedules": _items(SCHEDULE_SCHEMA),
        "Workers": _items(PROCESS_SCHEMA),
        "Retry": RETRY_SCHEMA,
        "BulkRetry": bulk_retry,
        "DeadRetried": BULK_RETRY_RESULT_SCHEMA,
        "DeadPurged": PURGED_SCHEMA,
        "Health": HEALTH_SCHEMA,
        "Problem": PROBLEM_SCHEMA,
        "ValidationProblem": VALIDATION_PROBLEM_SCHEMA,
    }


def _problem(description: str, schema: str = "Problem", **headers: Any) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": _ref(schema)}},
    }
    if headers:
        response["headers"] = headers
    return response


_RETRY_AFTER = {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}}

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
        "the write in time, or Redis did not answer a submission in time (then the job may "
        "exist: `jobId` names it and `mayExist` is true); retry after Retry-After seconds "
        "(with the same idempotency key, for a submission)",
        **{"Retry-After": _RETRY_AFTER},
    ),
}


#: The shared error response of each status a client can cause.
_ERROR_RESPONSES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    413: "TooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    503: "Unavailable",
}
#: Headers a reply may carry.
_HEADERS: dict[str, dict[str, Any]] = {
    "Location": {"description": "the job's URL", "schema": {"type": "string"}},
    "Idempotent-Replayed": {"schema": {"type": "string", "const": "true"}},
    "Retry-After": _RETRY_AFTER,
}


def _query_parameter(name: str, settings: Settings, parser: SubmissionParser) -> dict[str, Any]:
    schemas: dict[str, dict[str, Any]] = {
        "state": {"type": "string", "enum": list(ALL_STATES)},
        "type": {"type": "string", "enum": _type_names(parser)},
        "limit": {"type": "integer", "minimum": 1, "maximum": settings.max_list_limit},
        "cursor": {"type": "string", "pattern": "^[0-9]{1,18}$"},
    }
    descriptions = {
        "type": "a job type name or alias",
        "cursor": "nextCursor of the previous page",
        "limit": f"page size (default {DEFAULT_PAGE_SIZE})",
    }
    parameter = {"name": name, "in": "query", "schema": schemas[name]}
    if name in descriptions:
        parameter["description"] = descriptions[name]
    return parameter


def _operation(route: Route, settings: Settings, parser: SubmissionParser) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for reply in route.replies:
        content = {reply.media: {"schema": _ref(reply.schema) if reply.schema else {}}}
        if reply.media == "application/json" and not reply.schema:
            content = {reply.media: {"schema": {"type": "object"}}}
        if reply.media != "application/json":
            content = {reply.media: {"schema": {"type": "string"}}}
        response: dict[str, Any] = {"description": reply.description, "content": content}
        if reply.headers:
            response["headers"] = {name: _HEADERS[name] for name in reply.headers}
        responses[str(reply.status)] = response
    for status in route.statuses:
        if str(status) not in responses:
            responses[str(status)] = {"$ref": f"#/components/responses/{_ERROR_RESPONSES[status]}"}
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "responses": responses,
    }
    parameters = [_query_parameter(name, settings, parser) for name in route.query]
    if route.idempotency_header:
        parameters.append(IDEMPOTENCY_HEADER)
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        media: dict[str, Any] = {"schema": _ref(route.body)}
        if route.body == "Submission":
            media["examples"] = SUBMIT_EXAMPLES
        operation["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": media},
        }
    if route.role is Role.OPEN:
        operation["security"] = []
    return operation


def _paths(settings: Settings, parser: SubmissionParser) -> dict[str, Any]:
    """The route table rendered: one operation per route."""
    paths: dict[str, Any] = {}
    for route in ROUTES:
        item = paths.setdefault(openapi_path(route.path), {})
        if "{job_id}" in route.path:
            item["parameters"] = [JOB_ID_PARAMETER]
        item[route.method.lower()] = _operation(route, settings, parser)
    return paths


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

    async def on_get(self, req: Request, resp: Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.text = self.body
