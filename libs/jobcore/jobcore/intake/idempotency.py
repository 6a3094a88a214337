"""Idempotency keys: where they come from, how they are hashed and fingerprinted."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import http_sf

from jobcore import json_text
from jobcore.errors import MalformedRequest

#: Namespace of keys sent by API clients (when API keys are off).
CLIENT_NAMESPACE = "client"
#: Namespace of the scheduler's time-bucketed keys.
SCHEDULER_NAMESPACE = "schedule"
#: What an idempotency key may hold: anything but control characters (C0, DEL, C1). The
#: submission schema shows this pattern and ``key_problem`` applies it: one rule. It ends in
#: "nothing follows", not ``$``, which in Python also matches before a final newline.
KEY_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*(?![\s\S])"
_ALLOWED = re.compile(KEY_PATTERN)


def key_problem(key: str, max_length: int) -> str | None:
    """Why ``key`` is not an acceptable idempotency key, or ``None``."""
    if not key:
        return "must not be empty"
    if len(key) > max_length:
        return f"must be at most {max_length} characters"
    if not _ALLOWED.match(key):
        return "must not contain control characters"
    return None


def parse_header(value: str) -> str:
    """The key in an ``Idempotency-Key`` header: an RFC 8941 string (``"order-42"``, parsed by
    ``http_sf``) or a bare value.

    A bare value holds no comma: a server joins repeated headers with commas, so it could
    not tell one key from two. Header values are ASCII (RFC 8941 strings are printable
    ASCII, and servers hand other bytes over as Latin-1, which would make ``héllo`` in the
    header a different key from ``"héllo"`` in the body): a non-ASCII key is refused,
    pointing to the body field.
    """
    if not value.isascii():
        raise MalformedRequest(
            "The Idempotency-Key header must be ASCII (an RFC 8941 string); send a key "
            "with other characters as idempotencyKey in the JSON body"
        )
    value = value.strip()
    if not value.startswith('"'):
        if "," in value:
            # Repeated headers reach the app joined by commas: "a" and "b" would be "a,b".
            raise MalformedRequest(
                "Idempotency-Key: send one Idempotency-Key header; a key holding a comma "
                'goes quoted ("a,b") or as idempotencyKey in the JSON body'
            )
        return value
    try:
        parsed = http_sf.parse(value.encode("ascii"), tltype="item")
    except ValueError as exc:
        if _is_list_of_strings(value):
            raise MalformedRequest(
                "Idempotency-Key: send one Idempotency-Key header (repeated headers reach the "
                "server as one list of keys)"
            ) from None
        raise MalformedRequest(f"Idempotency-Key: not an RFC 8941 string ({exc})") from None
    key, parameters = parsed if isinstance(parsed, tuple) else (parsed, {})
    if not isinstance(key, str) or parameters:
        raise MalformedRequest("Idempotency-Key: a quoted key must be a plain RFC 8941 string")
    return key


def _is_list_of_strings(value: str) -> bool:
    """Whether ``value`` reads as several RFC 8941 strings: ``"a", "b"``."""
    try:
        members = http_sf.parse(value.encode("ascii"), tltype="list")
    except ValueError:
        return False
    return isinstance(members, list) and len(members) > 1


def _hash128(text: str) -> str:
    """128 bits of SHA-256 in 22 URL-safe characters: short enough to keep the stored
    idempotency entry a single small allocation in Redis."""
    raw = hashlib.sha256(text.encode("utf-8")).digest()[:16]
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def digest(key: str) -> str:
    """The hash a key is stored under: the raw key never touches Redis."""
    return _hash128(key)


def fingerprint(
    job_type: str, payload: Any, options: dict[str, Any], *, floats: bool = True
) -> str:
    """Same request ⇔ same fingerprint: canonical JSON of type, payload and options, equal
    numbers spelled alike (``floats=False``: payload and options hold none)."""
    request = {"type": job_type, "payload": payload, "options": options}
    if floats:
        request = _whole_floats_as_ints(request)
    return _hash128(json_text.canonical(request, floats=floats))


def _whole_floats_as_ints(value: Any) -> Any:
    """``value`` with each whole float as an int: ``10``, ``10.0`` and ``1e1`` are one JSON
    number, so a client that spells it differently on a retry sends the same request."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {key: _whole_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_floats_as_ints(item) for item in value]
    return value
