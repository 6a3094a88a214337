"""Reading a JSON request body strictly: size, content type, and what the parser refuses.

Falcon's default JSON handler lets deep nesting escape as a 500 and accepts NaN,
infinities, lone surrogates and duplicate keys; this reader refuses each with a 400,
an unsupported type with a 415, and a body over the limit with a 413 before reading it.
"""

from __future__ import annotations

import json
from typing import Any

import falcon

from jobcore_api.problems import problem

#: Deepest nesting of arrays and objects accepted in a body.
MAX_DEPTH = 32


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


def _check(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise _Refused(f"nesting deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise _Refused("strings must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Refused("strings must not contain lone surrogates") from exc


def parse_strict(raw: bytes) -> Any:
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
    except (json.JSONDecodeError, RecursionError) as exc:
        raise _Refused(f"the body is not valid JSON: {exc}") from exc
    _check(value)
    return value


def read_json(req: falcon.Request, max_bytes: int) -> Any:
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
    raw = req.bounded_stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise problem(falcon.HTTP_413, "Body too large", f"the body is over {max_bytes} bytes")
    if not raw.strip():
        raise problem(falcon.HTTP_400, "Empty body", "send a JSON object in the body")
    try:
        return parse_strict(raw)
    except ValueError as exc:
        raise problem(falcon.HTTP_400, "Malformed JSON", str(exc)) from exc
