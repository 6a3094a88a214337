"""The quick schema check never says yes where jsonschema says no, and says yes to the
requests clients send, so jsonschema runs only on the refusals it explains."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from jobcore.intake.schema_formats import FORMAT_CHECKER
from jobcore.intake.schema_quick_check import quick_check
from jobcore.intake.submission import SubmissionParser, submission_schema
from jobcore.model.catalogue import BUILTIN_SPECS, builtin_job_types

FAST = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
ENVELOPE = submission_schema()


def _judge(schema: Any) -> Draft202012Validator:
    """jsonschema as the parser runs it: Jobcore's formats asserted."""
    return Draft202012Validator(schema, format_checker=FORMAT_CHECKER)


SCHEMAS = {"envelope": ENVELOPE} | {spec.name: spec.payload_schema for spec in BUILTIN_SPECS}


def _names(schema: Any) -> set[str]:
    """Every property name and enum string in a schema: what generated objects use as keys."""
    found: set[str] = set()
    if isinstance(schema, dict):
        found |= {k for k in schema.get("properties", {}) if isinstance(k, str)}
        found |= {v for v in schema.get("enum", []) if isinstance(v, str)}
        for value in schema.values():
            found |= _names(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= _names(value)
    return found


NAMES = sorted(set().union(*(_names(s) for s in SCHEMAS.values())))
#: Values near the limits Jobcore's schemas draw, and of every JSON kind.
scalars = (
    st.none()
    | st.booleans()
    | st.sampled_from([0, 1, -1, 60, 61, 100, 101, 300, 301, 1000, 1001, 86_400_000, 2**63])
    | st.integers()
    | st.sampled_from([0.0, 0.5, 1.0, -0.5, 59.9, 60.0, 60.5, 300.0, 1e300])
    | st.floats(allow_nan=False)
    | st.sampled_from(["", "a", "a@b.co", "no-at", "fixed", "exponential", "x\n", "\x1f"])
    | st.sampled_from(["2026-01-18T10:12:30.000Z", "2026-01-18T10:12:30+01:00", "a" * 300])
    | st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=20,
)


def _near(schema: dict[str, Any]) -> list[Any]:
    """Values on and just past each limit of a schema."""
    near: list[Any] = []
    for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if keyword in schema:
            limit = schema[keyword]
            near += [limit, limit - 1, limit + 1, limit - 0.5, limit + 0.5, float(limit)]
    for keyword in ("minLength", "maxLength"):
        if keyword in schema:
            limit = schema[keyword]
            near += ["a" * limit, "a" * (limit + 1), "a" * max(limit - 1, 0)]
    near += list(schema.get("enum", []))
    return near


def instances(schema: Any) -> st.SearchStrategy[Any]:
    """Instances built from a schema's own shape: its property names, and values on and
    around its limits, mixed with values of every other kind."""
    if not isinstance(schema, dict):
        return values
    options = [values]
    if _near(schema):
        options.append(st.sampled_from(_near(schema)))
    properties = schema.get("properties", {})
    if properties:
        members = {name: instances(sub) for name, sub in properties.items()}
        options.append(
            st.fixed_dictionaries({}, optional=members)
            | st.fixed_dictionaries({}, optional=members | {"extra": values})
        )
    for keyword in ("items", "additionalProperties", "propertyNames"):
        if isinstance(schema.get(keyword), dict):
            inner = instances(schema[keyword])
            options.append(st.lists(inner, max_size=3))
            options.append(
                st.dictionaries(
                    st.text(max_size=3) | inner.filter(lambda v: isinstance(v, str)),
                    inner,
                    max_size=3,
                )
            )
    return st.one_of(options)


def test_every_schema_of_the_api_compiles():
    assert quick_check(ENVELOPE) is not None
    assert all(quick_check(schema) is not None for schema in SCHEMAS.values())


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@FAST
@given(data=st.data())
def test_quick_yes_implies_jsonschema_yes(name, data):
    instance = data.draw(instances(SCHEMAS[name]))
    quick = quick_check(SCHEMAS[name])
    if quick is not None and quick(instance):
        assert _judge(SCHEMAS[name]).is_valid(instance)


@pytest.mark.parametrize(
    "instance",
    [
        {"type": "dummy", "payload": {}, "idempotencyKey": "k-1"},
        {"type": "x", "backoff": {"type": "fixed", "delayMs": 1, "jitter": True}},
        {"type": "x", "backoff": {"type": "fixed", "delayMs": 1, "jitter": 2}},
        {"type": "x", "maxAttempts": 1.0, "delaySeconds": 0},
        {"type": "x", "maxAttempts": True},
        {"type": "x", "idempotencyKey": "tab\there"},
        {"type": "x", "runAt": "2026-01-18T10:12:30.000Z\n"},
        {"email": "a@b.co", "name": "A"},
        {"failTimes": 1.5, "sleepSeconds": 60},
        {"echo": None, "alwaysFail": 0},
    ],
)
@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_quick_and_jsonschema_agree_on_requests_clients_send(name, instance):
    quick = quick_check(SCHEMAS[name])
    if quick is not None:
        valid = _judge(SCHEMAS[name]).is_valid(instance)
        if "\\n" in repr(instance):
            # fastjsonschema reads a pattern's $ as the very end (ECMA); jsonschema lets it
            # match before a final newline. A quick no only costs time: jsonschema judges.
            assert valid or not quick(instance)
        else:
            assert quick(instance) == valid


@pytest.mark.parametrize(
    "schema, instance, valid",
    [
        ({"type": "integer"}, 1.0, True),
        ({"type": "integer"}, True, False),
        ({"type": "number", "minimum": 0}, -0.5, False),
        ({"minimum": 0}, False, True),  # bounds apply to numbers only
        ({"enum": ["a", True]}, True, True),
        ({"enum": [1]}, True, False),
        ({"maxLength": 2}, "abc", False),
        ({"additionalProperties": {"type": "string"}, "properties": {"n": {}}}, {"n": 1}, True),
        ({"additionalProperties": {"type": "string"}}, {"n": 1}, False),
        ({"propertyNames": {"maxLength": 1}, "maxProperties": 2}, {"a": 1, "b": 2}, True),
        ({"items": {"type": "object"}, "maxItems": 1}, [{}, {}], False),
        ({"required": ["a"]}, [], True),
    ],
)
def test_quick_answers_agree_with_jsonschema_on_the_edges(schema, instance, valid):
    assert Draft202012Validator(schema).is_valid(instance) is valid
    quick = quick_check(schema)
    assert quick is not None
    assert quick(instance) is valid


@pytest.mark.parametrize("schema", [{"$ref": "#/nowhere"}, {"type": "int"}])
def test_a_schema_it_cannot_compile_is_left_to_jsonschema(schema):
    assert quick_check(schema) is None
    assert quick_check({"properties": {"a": schema}}) is None


def test_the_parser_still_explains_every_refusal():
    parser = SubmissionParser(builtin_job_types())
    body = {"type": "dummy", "payload": {"failTimes": -1, "extra": 1}, "maxAttempts": 0}
    with pytest.raises(Exception) as raised:
        parser.parse(body, None, now_ms=0)
    pointers = sorted(p.pointer for p in raised.value.problems)  # type: ignore[attr-defined]
    assert pointers == ["/maxAttempts"]
    body = {"type": "dummy", "payload": {"failTimes": -1, "extra": 1}}
    with pytest.raises(Exception) as raised:
        parser.parse(body, None, now_ms=0)
    pointers = sorted(p.pointer for p in raised.value.problems)  # type: ignore[attr-defined]
    assert pointers == ["/payload", "/payload/failTimes"]
