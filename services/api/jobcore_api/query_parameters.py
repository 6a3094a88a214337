"""Query parameters each route takes (``routes.py``); anything else is refused with a ``422``.

A typo must not widen what a request does (``DELETE /jobs/dead?Type=email`` used to purge
every dead letter), and a repeated parameter must not silently mean its last value.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from falcon.asgi import Request, Response

from jobcore.errors import InvalidRequest, Problem, quoted
from jobcore.intake.schema_messages import names
from jobcore_api.routes import route_for

#: The title of every refusal of a query.
INVALID_QUERY = "Invalid query"


def query_problems(query_string: str, allowed: tuple[str, ...]) -> list[Problem]:
    """Unknown and repeated parameters in ``query_string``, as problems."""
    problems: list[Problem] = []
    seen: set[str] = set()
    expected = names(sorted(allowed)) if allowed else "none"
    for name, _value in parse_qsl(query_string, keep_blank_values=True):
        if name not in allowed:
            detail = f"unknown query parameter {quoted(name)}; allowed: {expected}"
            problems.append(Problem(f"/query/{name}", detail))
        elif name in seen:
            problems.append(Problem(f"/query/{name}", "given more than once; send it once"))
        seen.add(name)
    return problems


class QueryParameterCheck:
    """Falcon middleware applying each route's query parameters."""

    async def process_resource(
        self, req: Request, resp: Response, resource: Any, params: dict[str, Any]
    ) -> None:
        if resource is None or not req.query_string:
            return
        route = route_for(req.uri_template, req.method)
        problems = query_problems(req.query_string, route.query if route else ())
        if problems:
            raise InvalidRequest(problems, title=INVALID_QUERY)
