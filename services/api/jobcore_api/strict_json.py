"""Reading a JSON request body strictly: size, content type, and what the parser refuses.

Falcon's default JSON handler lets deep nesting escape as a 500 and accepts NaN,
infinities, lone surrogates and duplicate keys; this reader refuses each with a 400,
an unsupported type with a 415, and a body over the limit with a 413: by its declared
``Content-Length`` before reading, or, for a chunked body, after reading one byte more
than the limit and no further.
"""

from __future__ import annotations

import json
from typing import Any

import falcon

from jobcore_api.problems import problem

#: Deepest nesting of arrays and objects accepted in a body (``JOBCORE_MAX_JSON_DEPTH``).
MAX_DEPTH = 32
#: Bytes read from a chunked body per call.
READ_CHUNK = 64 * 1024


class _Refused(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise _Refused(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Refused(f"the number {text[:40]} is too large")
    return value


def _check(value: Any, max_depth: int) -> None:
    """Refuse more than ``max_depth`` nested arrays and objects (the body itself is the first)
    and strings the rest of Jobcore cannot hold."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            _check_text(item)
            continue
        if not isinstance(item, dict | list):
            continue
        if level > max_depth:
            raise _Refused(f"nesting deeper than {max_depth} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append((child, level + 1))
        else:
            stack.extend((child, level + 1) for child in item)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise _Refused("strings must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Refused("strings must not contain lone surrogates") from exc


def parse_strict(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Decode ``raw`` or raise ``ValueError`` saying what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refused("the body is not valid UTF-8") from exc
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constants,
            parse_float=_finite_float,
        )
    except _Refused:
        raise
    except RecursionError as exc:
        raise _Refused(f"nesting deeper than {max_depth} levels") from exc
    except ValueError as exc:
        # JSONDecodeError, and integers longer than Python converts (4300 digits).
        raise _Refused(f"the body is not valid JSON: {exc}") from exc
    _check(value, max_depth)
    return value


def _read_bounded(req: falcon.Request, max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes of the body, with or without a Content-Length."""
    if req.content_length is not None:
        return bytes(req.bounded_stream.read(max_bytes + 1))
    if "chunked" not in (req.get_header("Transfer-Encoding") or "").lower():
        return b""
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        chunk = req.stream.read(min(READ_CHUNK, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_json(req: falcon.Request, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """The request's JSON body, or a problem for the client to fix (400/413/415)."""
    content_type = (req.content_type or "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise problem(
            falcon.HTTP_415,
            "Unsupported media type",
            f"send the body as JSON with Content-Type: application/json "
            f"(got {content_type or 'no content type'})",
        )
    length = req.content_length
    if length is not None and length > max_bytes:
        raise problem(
            falcon.HTTP_413,
            "Body too large",
            f"the body is {length} bytes; the limit is {max_bytes}",
        )
    raw = _read_bounded(req, max_bytes)
    if len(raw) > max_bytes:
        raise problem(falcon.HTTP_413, "Body too large", f"the body is over {max_bytes} bytes")
    if not raw.strip():
        raise problem(falcon.HTTP_400, "Empty body", "send a JSON object in the body")
    try:
        return parse_strict(raw, max_depth)
    except ValueError as exc:
        raise problem(falcon.HTTP_400, "Malformed JSON", str(exc)) from exc
