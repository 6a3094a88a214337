"""Reading a JSON request body strictly: size, content type, and what the parser refuses.

Falcon's default JSON handler lets deep nesting escape as a 500 and accepts NaN,
infinities, lone surrogates and duplicate keys; this reader refuses each with a 400,
an unsupported type with a 415, and a body over the limit with a 413: by its declared
``Content-Length`` before reading, or, for a chunked body, after reading one byte more
than the limit and no further.
"""

from __future__ import annotations

import re
from typing import Any

import falcon
from falcon.asgi import Request, Response

from jobcore.errors import InvalidRequest, Problem
from jobcore.intake.schema_messages import names
from jobcore.intake.strict_json import parse_strict
from jobcore_api.problems import problem
from jobcore_api.routes import route_for

#: Set in a request's ASGI scope by the server's protocol (``asgi_worker``) when its
#: connection closed before its body arrived whole: what was read is not the body meant.
BODY_CUT_SHORT = "jobcore.body_cut_short"
#: Bytes read from a chunked body per call.
READ_CHUNK = 64 * 1024
#: The headers of an answer given before the body was read whole: the rest of it would be
#: read as the next request, so the connection closes.
_UNREAD = {"Connection": "close"}
#: JSON's media types: ``application/json`` and structured-syntax ones (RFC 6839), such as
#: ``application/merge-patch+json``.
_JSON_MEDIA_TYPE = re.compile(r"application/(?:json|[a-z0-9][a-z0-9!#$&^_.-]*\+json)")
#: A body that asks for nothing: empty, blank, or an empty JSON object.
_NOTHING = re.compile(rb"\s*(\{\s*\})?\s*")


async def _read_bounded(req: Request, max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes of the body, with or without a Content-Length."""
    if req.content_length is None and (
        "chunked" not in (req.get_header("Transfer-Encoding") or "").lower()
    ):
        return b""
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        chunk = await req.stream.read(min(READ_CHUNK, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def declared_too_large(length: int, max_bytes: int) -> str:
    """What a ``413`` for a declared ``Content-Length`` over the limit says (the app's, and
    the server protocol's, which refuses it before the app runs)."""
    return f"the body is {length} bytes; the limit is {max_bytes}"


def _refuse_unless_whole(req: Request, raw: bytes) -> None:
    """A body whose connection closed (or timed out) before it arrived whole is not acted on
    (the client is gone: the answer is for the log and the metrics)."""
    length = req.content_length
    if req.scope.get(BODY_CUT_SHORT) or (length is not None and len(raw) < length):
        raise problem(
            falcon.HTTP_400, "Incomplete body", "the body did not arrive whole; send it again"
        )


async def read_json(req: Request, max_bytes: int, max_depth: int) -> Any:
    """The request's JSON body, or a problem for the client to fix (400/413/415)."""
    declared = req.content_type or ""
    content_type, parameters = falcon.parse_header(declared) if declared else ("", {})
    content_type = content_type.lower()
    if not _JSON_MEDIA_TYPE.fullmatch(content_type):
        raise problem(
            falcon.HTTP_415,
            "Unsupported media type",
            f"send the body as JSON with Content-Type: application/json "
            f"(got {content_type[:60] or 'no content type'})",
        )
    charset = parameters.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8", "us-ascii"):
        raise problem(
            falcon.HTTP_415,
            "Unsupported charset",
            f"JSON is read as UTF-8: send the body in UTF-8, with charset=utf-8 or no charset "
            f"(got charset={charset[:40]})",
        )
    encoding = (req.get_header("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise problem(
            falcon.HTTP_415,
            "Unsupported content encoding",
            f"send the body uncompressed (got Content-Encoding: {encoding[:40]})",
        )
    length = req.content_length
    if length is not None and length > max_bytes:
        raise problem(
            falcon.HTTP_413,
            "Body too large",
            declared_too_large(length, max_bytes),
            headers=dict(_UNREAD),
        )
    raw = await _read_bounded(req, max_bytes)
    if len(raw) > max_bytes:
        raise problem(
            falcon.HTTP_413,
            "Body too large",
            f"the body is over {max_bytes} bytes",
            headers=dict(_UNREAD),
        )
    _refuse_unless_whole(req, raw)
    if not raw.strip():
        raise problem(falcon.HTTP_400, "Empty body", "send a JSON object in the body")
    try:
        return parse_strict(raw, max_depth)
    except ValueError as exc:
        raise problem(falcon.HTTP_400, "Malformed JSON", str(exc)) from exc


class NoBodyCheck:
    """Falcon middleware refusing a body sent to an operation that takes none (``422``).

    Ignoring it would let a filter put in the wrong place widen what a request does:
    ``DELETE /jobs/dead`` with ``{"type": "email"}`` in its body used to purge every dead
    letter. An empty body, or ``{}``, asks for nothing and is taken.
    """

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    async def process_resource(
        self, req: Request, resp: Response, resource: Any, params: dict[str, Any]
    ) -> None:
        if resource is None or req.method in ("GET", "HEAD"):
            return
        route = route_for(req.uri_template, req.method)
        if route is None or route.body is not None:
            return
        raw = await _read_bounded(req, self.max_body_bytes)
        _refuse_unless_whole(req, raw)
        if _NOTHING.fullmatch(raw):
            return
        where = f"; send its options in the query: {names(route.query)}" if route.query else ""
        detail = f"{req.method} {route.path} takes no body{where}"
        raise InvalidRequest([Problem("", detail)])
