"""Refusal messages for JSON Schema errors: what to fix, with values quoted briefly, in JSON.

jsonschema's own messages quote the whole offending value in Python's spelling (``None``,
``True``, ``{'a': 1}``), so a 1 MB string comes back twice in a 2 MB answer. These say what
the schema expects, quote at most ``MAX_QUOTED`` characters of a value, once, as JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from jsonschema.exceptions import ValidationError

from jobcore.errors import quoted
from jobcore.model.email_addresses import EMAIL_FORMAT

#: Most names listed in one message (unknown fields, missing fields).
MAX_NAMES = 10

#: JSON's names of the kinds of values.
_KIND = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def kind_of(value: Any) -> str:
    """The JSON kind of a decoded value: ``string``, ``integer``, ``object``…"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def names(items: Iterable[Any]) -> str:
    listed = [quoted(str(item)) for item in items]
    more = len(listed) - MAX_NAMES
    shown = ", ".join(listed[:MAX_NAMES])
    return shown + (f" and {more} more" if more > 0 else "")


def _rule(error: ValidationError) -> Any:
    """The schema keyword's value that the instance broke."""
    return error.validator_value


def _type(error: ValidationError) -> str:
    expected = _rule(error)
    kinds = [expected] if isinstance(expected, str) else list(expected)
    wanted = " or ".join(_KIND.get(k, k) for k in kinds)
    instance = error.instance
    # A scalar is quoted as JSON spells it (null, true, "text"); a container is named.
    got = _KIND[kind_of(instance)] if isinstance(instance, dict | list) else quoted(instance)
    return f"must be {wanted}, not {got}"


def _enum(error: ValidationError) -> str:
    return f"must be one of {names(_rule(error))}; got {quoted(error.instance)}"


def _const(error: ValidationError) -> str:
    return f"must be {quoted(error.validator_value)}"


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _bound(word: str) -> Callable[[ValidationError], str]:
    return lambda error: f"must be {word} {_number(error.validator_value)}"


def _length(word: str, unit: str) -> Callable[[ValidationError], str]:
    return lambda error: f"must have {word} {error.validator_value} {unit}"


def _required(error: ValidationError) -> str:
    instance = error.instance if isinstance(error.instance, dict) else {}
    missing = [name for name in _rule(error) if name not in instance]
    return f"{names(missing)} {'is' if len(missing) == 1 else 'are'} required"


def _additional(error: ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    known = schema.get("properties", {})
    instance = error.instance if isinstance(error.instance, dict) else {}
    extra = [name for name in instance if name not in known]
    allowed = names(sorted(known)) if known else "none"
    return f"unknown field(s) {names(extra)}; allowed: {allowed}"


def _pattern(error: ValidationError) -> str:
    return f"does not match the pattern {quoted(error.validator_value)}"


def _format(error: ValidationError) -> str:
    what = "an e-mail address" if _rule(error) == EMAIL_FORMAT else f"a valid {_rule(error)}"
    return f"is not {what}: {error.cause}" if error.cause else f"is not {what}"


def _multiple(error: ValidationError) -> str:
    return f"must be a multiple of {_number(error.validator_value)}"


_DESCRIBERS: dict[str, Callable[[ValidationError], str]] = {
    "type": _type,
    "enum": _enum,
    "const": _const,
    "minimum": _bound("at least"),
    "maximum": _bound("at most"),
    "exclusiveMinimum": _bound("more than"),
    "exclusiveMaximum": _bound("less than"),
    "minLength": _length("at least", "character(s)"),
    "maxLength": _length("at most", "character(s)"),
    "minItems": _length("at least", "item(s)"),
    "maxItems": _length("at most", "item(s)"),
    "minProperties": _length("at least", "field(s)"),
    "maxProperties": _length("at most", "field(s)"),
    "required": _required,
    "additionalProperties": _additional,
    "unevaluatedProperties": _additional,
    "pattern": _pattern,
    "format": _format,
    "multipleOf": _multiple,
    "uniqueItems": lambda error: "must not hold the same item twice",
}


def schema_message(error: ValidationError, *, patterns: dict[str, str] | None = None) -> str:
    """What to fix for one jsonschema error; ``patterns`` names what known patterns mean."""
    if error.validator == "pattern" and patterns and error.validator_value in patterns:
        return patterns[error.validator_value]
    describe = _DESCRIBERS.get(str(error.validator))
    message = (
        describe(error)
        if describe is not None
        else f"does not satisfy the schema's {quoted(error.validator)} rule"
    )
    if "propertyNames" in error.schema_path:
        # Raised on a field's name, not its value: say which name.
        return f"field name {quoted(error.instance)} {message}"
    return message
