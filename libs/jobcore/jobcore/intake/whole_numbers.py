"""Whole numbers as the schema means them: ``1.0`` where a schema says ``integer`` becomes ``1``.

JSON Schema counts ``1.0`` as an integer, and JSON parsers hand it over as a float. Jobcore
converts such values before anything is stored, so a record never holds ``"1.0"`` where an
integer belongs and job code sees the type its schema declared.
"""

from __future__ import annotations

from typing import Any


def _means_integer(schema: dict[str, Any]) -> bool:
    declared = schema.get("type")
    names = [declared] if isinstance(declared, str) else declared or []
    return "integer" in names and "number" not in names


def contains_float(value: Any) -> bool:
    """Whether a float appears anywhere in ``value`` (most submissions hold none)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def whole_numbers(value: Any, schema: Any) -> Any:
    """``value`` (already valid against ``schema``) with integral floats made ``int`` wherever
    the schema declares ``integer``; follows ``properties``, ``additionalProperties``,
    ``items``, ``allOf`` and ``if``/``then``/``else``. Returns a new value; the input is kept."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, float) and value.is_integer() and _means_integer(schema):
        return int(value)
    for branch in schema.get("allOf", ()):
        value = whole_numbers(value, branch)
    if "if" in schema:
        # The caller validated the value: pick the branch the validator took.
        from jsonschema import Draft202012Validator

        taken = "then" if Draft202012Validator(schema["if"]).is_valid(value) else "else"
        value = whole_numbers(value, schema.get(taken, {}))
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {
            key: whole_numbers(item, properties.get(key, extra if key not in properties else {}))
            for key, item in value.items()
        }
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [whole_numbers(item, schema["items"]) for item in value]
    return value
