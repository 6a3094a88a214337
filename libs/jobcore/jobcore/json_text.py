"""JSON text written on every submission (a record's payload, an idempotency fingerprint, a
job's message, the API's answers), by orjson where its text is the standard library's.

For values without floats and with integers within 64 bits, orjson writes what
``json.dumps`` writes with the same options, byte for byte (``tests/test_json_text.py``
checks it for any such value), in one C call (the standard library's encoder sets its C
encoder up again on every call). Floats are left to the standard library: the two spell
some differently (``1e+16`` against ``1e16``), and a fingerprint or a stored payload must
not change its text between versions. A value orjson refuses (an
integer beyond 64 bits, a non-string key) goes to the standard library too.

Every reader of JSON refuses the numbers strict JSON has no room for: NaN and infinities
(``refuse_constant``) and numbers overflowing to infinity (``finite_float``), with
``Refused``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

#: Encoders built once (``json.dumps`` with options builds a new one per call).
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_ASCII = json.JSONEncoder(separators=(",", ":"))


class Refused(ValueError):
    """A JSON text Jobcore refuses to read, saying why."""


def refuse_constant(name: str) -> Any:
    """``json.loads``'s ``parse_constant``: ``NaN``, ``Infinity`` and ``-Infinity``."""
    raise Refused(f"{name} is not valid JSON")


def finite_float(text: str) -> float:
    """``json.loads``'s ``parse_float``: a number that overflows to infinity is refused."""
    value = float(text)
    if value in (math.inf, -math.inf):
        raise Refused(f"the number {text[:40]} is too large")
    return value


def compact(value: Any, *, floats: bool = True) -> str:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``: UTF-8, no spaces,
    keys in their order. ``floats=False`` says ``value`` holds none."""
    if not floats:
        try:
            return orjson.dumps(value).decode()
        except TypeError:
            pass
    return _COMPACT.encode(value)


def canonical(value: Any, *, floats: bool = True) -> str:
    """``compact`` with keys sorted: the same value always gives the same text."""
    if not floats:
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:
            pass
    return _CANONICAL.encode(value)


def compact_ascii(value: Any) -> bytes:
    """``json.dumps(value, separators=(",", ":"))`` in bytes (non-ASCII escaped), as
    Dramatiq's JSON encoder writes a message; for values without floats."""
    try:
        encoded = orjson.dumps(value)
    except TypeError:
        encoded = b""
    # ``json.dumps`` escapes DEL as well as what is not ASCII.
    if encoded and encoded.isascii() and b"\x7f" not in encoded:
        return encoded
    return _ASCII.encode(value).encode("ascii")


def answer(value: Any) -> bytes:
    """An HTTP answer's body: compact UTF-8 JSON. Floats are spelled as orjson spells them
    (a client reads the same number). What orjson refuses (an integer beyond 64 bits, a
    lone surrogate read from a damaged record) is written by the standard library with
    everything beyond ASCII escaped, so any value Jobcore holds can be answered."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return _ASCII.encode(value).encode("ascii")
