"""A quick yes for valid input: JSON Schemas compiled into plain functions.

jsonschema walks a schema keyword by keyword through generators: about a tenth of an API
request's CPU for the envelope and a small payload. ``quick_check`` compiles the keywords
Jobcore's schemas use into one plain function that answers True only when jsonschema would
find no error; anything else (False, or a schema it cannot compile) goes to jsonschema,
which stays the judge and writes every message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sized
from typing import Any

from jobcore.model.email_addresses import EMAIL_FORMAT, address_problem

#: Keywords that describe and never refuse.
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$comment", "deprecated", "readOnly"}
)
QuickCheck = Callable[[Any], bool]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPE_CHECKS: dict[str, QuickCheck] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    # Draft 2020-12: 1.0 is an integer too.
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
}
#: Scalar kinds whose equality is JSON equality (``enum``/``const``); others go to jsonschema.
_PLAIN = (str, bool, type(None))


def _same_json(value: Any, allowed: Any) -> bool:
    return type(value) is type(allowed) and isinstance(value, _PLAIN) and value == allowed


def quick_check(schema: Any) -> QuickCheck | None:
    """A function accepting only instances ``schema`` accepts (it may refuse some it would
    accept), or None when ``schema`` uses a keyword this compiler does not know."""
    if schema is True or schema == {}:
        return lambda _value: True
    if not isinstance(schema, dict) or set(schema) - _KEYWORDS.keys() - _ANNOTATIONS:
        return None
    checks: list[QuickCheck] = []
    for keyword, argument in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        check = _KEYWORDS[keyword](argument, schema)
        if check is None:
            return None
        checks.append(check)
    if len(checks) == 1:
        return checks[0]
    return lambda value: all(check(value) for check in checks)


def _type(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    names = [argument] if isinstance(argument, str) else argument
    if not isinstance(names, list) or any(n not in _TYPE_CHECKS for n in names):
        return None
    checks = [_TYPE_CHECKS[n] for n in names]
    if len(checks) == 1:
        return checks[0]
    return lambda value: any(check(value) for check in checks)


def _bound(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], QuickCheck | None]:
    def build(limit: Any, schema: dict[str, Any]) -> QuickCheck | None:
        if not _is_number(limit):
            return None
        return lambda value: not _is_number(value) or compare(value, limit)

    return build


def _length(compare: Callable[[int, int], bool]) -> Callable[[Any, Any], QuickCheck | None]:
    def build(limit: Any, schema: dict[str, Any]) -> QuickCheck | None:
        if not isinstance(limit, int) or isinstance(limit, bool):
            return None
        return lambda value: not isinstance(value, str) or compare(len(value), limit)

    return build


def _count(
    kind: type[Sized], compare: Callable[[int, int], bool]
) -> Callable[[Any, Any], QuickCheck | None]:
    def build(limit: Any, schema: dict[str, Any]) -> QuickCheck | None:
        if not isinstance(limit, int) or isinstance(limit, bool):
            return None
        return lambda value: not isinstance(value, kind) or compare(len(value), limit)

    return build


def _pattern(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    if not isinstance(argument, str):
        return None
    search = re.compile(argument).search  # what jsonschema calls: re.search
    return lambda value: not isinstance(value, str) or search(value) is not None


def _enum(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    if not isinstance(argument, list):
        return None
    return lambda value: any(_same_json(value, allowed) for allowed in argument)


def _const(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    return lambda value: _same_json(value, argument)


def _required(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    if not isinstance(argument, list):
        return None
    names = tuple(argument)
    return lambda value: not isinstance(value, dict) or all(n in value for n in names)


def _properties(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    if not isinstance(argument, dict):
        return None
    checks = {}
    for name, subschema in argument.items():
        check = quick_check(subschema)
        if check is None:
            return None
        checks[name] = check

    def properties(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        for name, item in value.items():
            check = checks.get(name)
            if check is not None and not check(item):
                return False
        return True

    return properties


def _additional_properties(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    if "patternProperties" in schema or not isinstance(schema.get("properties", {}), dict):
        return None
    known = frozenset(schema.get("properties", {}))
    check = quick_check(argument) if argument is not False else None
    if argument is not False and check is None:
        return None

    def additional(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        if check is None:  # additionalProperties: false
            return known.issuperset(value)
        return all(check(item) for name, item in value.items() if name not in known)

    return additional


def _property_names(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    check = quick_check(argument)
    if check is None:
        return None
    return lambda value: not isinstance(value, dict) or all(check(name) for name in value)


def _items(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    check = quick_check(argument)
    if check is None or "prefixItems" in schema:
        return None
    return lambda value: not isinstance(value, list) or all(check(item) for item in value)


def _format(argument: Any, schema: dict[str, Any]) -> QuickCheck | None:
    # As ``schema_formats.FORMAT_CHECKER`` asserts: e-mail addresses; others annotate.
    if argument == EMAIL_FORMAT:
        return lambda value: not isinstance(value, str) or address_problem(value) is None
    return lambda value: True


_KEYWORDS: dict[str, Callable[[Any, dict[str, Any]], QuickCheck | None]] = {
    "type": _type,
    "minimum": _bound(lambda value, limit: value >= limit),
    "maximum": _bound(lambda value, limit: value <= limit),
    "exclusiveMinimum": _bound(lambda value, limit: value > limit),
    "exclusiveMaximum": _bound(lambda value, limit: value < limit),
    "minLength": _length(lambda size, limit: size >= limit),
    "maxLength": _length(lambda size, limit: size <= limit),
    "pattern": _pattern,
    "format": _format,
    "enum": _enum,
    "const": _const,
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional_properties,
    "propertyNames": _property_names,
    "minProperties": _count(dict, lambda size, limit: size >= limit),
    "maxProperties": _count(dict, lambda size, limit: size <= limit),
    "items": _items,
    "minItems": _count(list, lambda size, limit: size >= limit),
    "maxItems": _count(list, lambda size, limit: size <= limit),
}
