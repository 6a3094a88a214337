"""Strict JSON: what Jobcore's parser refuses, for request bodies and ``--payload`` alike.

Python's ``json`` accepts NaN, infinities, numbers overflowing to infinity, duplicate
keys, lone surrogates and NUL characters, and hits the recursion limit on deep nesting;
``parse_strict`` refuses each with a ``ValueError`` that says what is wrong.
"""

from __future__ import annotations

import json
from typing import Any

from jobcore.errors import quoted
from jobcore.json_text import Refused, finite_float, refuse_constant


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise Refused(f"duplicate key {quoted(key)}")
        result[key] = value
    return result


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
            raise Refused(f"nesting deeper than {max_depth} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append((child, level + 1))
        else:
            stack.extend((child, level + 1) for child in item)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise Refused("strings must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Refused("strings must not contain lone surrogates") from exc


def parse_strict(raw: bytes, max_depth: int) -> Any:
    """Decode ``raw`` or raise ``ValueError`` saying what is wrong with it."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raise Refused("the body starts with a byte-order mark: send UTF-8 without one")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused("the body is not valid UTF-8") from exc
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=refuse_constant,
            parse_float=finite_float,
        )
    except Refused:
        raise
    except RecursionError as exc:
        raise Refused(f"nesting deeper than {max_depth} levels") from exc
    except json.JSONDecodeError as exc:
        raise Refused(f"the body is not valid JSON: {exc}") from exc
    except ValueError as exc:
        # An integer longer than Python converts (4300 digits).
        raise Refused("a number has too many digits (at most 4300)") from exc
    # A string holds a NUL or a lone surrogate only through a ``\u`` escape (the UTF-8
    # decoder and the parser refuse them raw), and nesting is at most the number of
    # brackets: most bodies need no walk.
    if b"\\u" in raw or raw.count(b"[") + raw.count(b"{") > max_depth:
        _check(value, max_depth)
    return value
