"""Properties over generated input: key hashing, fingerprints, strict JSON, payload validation."""

from __future__ import annotations

import contextlib
import json
import random
import re
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobcore import json_text
from jobcore.errors import InvalidRequest, MalformedRequest, UnknownJobType
from jobcore.intake.idempotency import (
    CLIENT_NAMESPACE,
    digest,
    fingerprint,
    key_problem,
    parse_header,
)
from jobcore.intake.limits import (
    DEFAULT_LIMITS,
    INT64_MAX,
    INT64_MIN,
    payload_problems,
)
from jobcore.intake.strict_json import parse_strict
from jobcore.intake.submission import SubmissionParser
from jobcore.model.catalogue import BUILTIN_SPECS, builtin_job_types
from jobcore.store import keys

PARSER = SubmissionParser(builtin_job_types())
#: A hundred examples per property; no example database left in the working tree.
FAST = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

#: Text that Jobcore stores: no NUL, no lone surrogates.
clean_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
#: Idempotency keys as clients may send them: 1-255 characters, no control characters.
client_keys = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=255
).filter(lambda k: key_problem(k, DEFAULT_LIMITS.max_idempotency_key_length) is None)
json_scalars = st.none() | st.booleans() | st.integers(INT64_MIN, INT64_MAX) | clean_text
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(clean_text, children, max_size=5)
    ),
    max_leaves=30,
)


# --- idempotency keys: hashed before Redis ------------------------------------------------


@FAST
@given(client_keys)
def test_a_key_is_stored_only_as_its_hash(key):
    name = keys.idempotency(CLIENT_NAMESPACE, digest(key))
    assert re.fullmatch(r"jobcore:idem:client:[A-Za-z0-9_-]{22}", name)
    assert digest(key) == digest(key)


@FAST
@given(client_keys, client_keys)
def test_different_keys_have_different_digests(first, second):
    assert (digest(first) == digest(second)) == (first == second)


#: Keys a header can carry: printable ASCII (RFC 8941 strings).
header_keys = client_keys.filter(str.isascii)


@FAST
@given(header_keys)
def test_a_quoted_header_key_reads_back_as_the_key(key):
    quoted = '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    assert parse_header(quoted) == key


@FAST
@given(header_keys.filter(lambda k: k == k.strip() and not k.startswith('"') and "," not in k))
def test_a_bare_header_key_reads_back_as_the_key(key):
    assert parse_header(key) == key


@FAST
@given(client_keys.filter(lambda k: not k.isascii()))
def test_a_non_ascii_header_key_is_refused_pointing_to_the_body(key):
    with pytest.raises(MalformedRequest, match="idempotencyKey"):
        parse_header(key)


@FAST
@given(st.lists(header_keys, min_size=2, max_size=4))
def test_repeated_quoted_header_keys_are_refused_asking_for_one_header(keys):
    joined = ", ".join('"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"' for k in keys)
    with pytest.raises(MalformedRequest, match="send one Idempotency-Key header"):
        parse_header(joined)


# --- fingerprints: same request, same fingerprint -----------------------------------------


@FAST
@given(st.dictionaries(clean_text, json_values, max_size=8), st.randoms())
def test_a_fingerprint_ignores_key_order(payload, rnd: random.Random):
    items = list(payload.items())
    rnd.shuffle(items)
    assert fingerprint("dummy", dict(items), {}) == fingerprint("dummy", payload, {})


@FAST
@given(json_values, json_values)
def test_different_payloads_have_different_fingerprints(first, second):
    same = json_text.canonical(first) == json_text.canonical(second)
    assert (fingerprint("dummy", first, {}) == fingerprint("dummy", second, {})) == same


@FAST
@given(json_values, st.sampled_from(["email", "dummy"]), st.integers(1, 100))
def test_type_and_options_are_part_of_the_fingerprint(payload, job_type, attempts):
    plain = fingerprint(job_type, payload, {})
    assert fingerprint("report", payload, {}) != plain or job_type == "report"
    assert fingerprint(job_type, payload, {"maxAttempts": attempts}) != plain


@FAST
@given(json_values)
def test_canonical_json_round_trips(value):
    assert json.loads(json_text.canonical(value)) == value


# --- strict JSON: never anything but a value or a ValueError -------------------------------


@FAST
@given(json_values)
def test_strict_json_reads_back_what_json_writes(value):
    assert parse_strict(json.dumps(value).encode(), DEFAULT_LIMITS.max_json_depth) == value


@FAST
@given(st.binary(max_size=200))
def test_strict_json_refuses_garbage_with_a_value_error_only(raw):
    # Anything else (RecursionError, UnicodeError outside ValueError, ...) would be a 500.
    with contextlib.suppress(ValueError):
        parse_strict(raw, DEFAULT_LIMITS.max_json_depth)


@FAST
@given(st.dictionaries(clean_text, json_values, min_size=1, max_size=5))
def test_strict_json_refuses_any_duplicate_key(value):
    key = next(iter(value))
    text = json.dumps(value)
    doubled = text[:-1] + ", " + json.dumps(key) + ": 1}"
    with pytest.raises(ValueError, match="duplicate key"):
        parse_strict(doubled.encode(), DEFAULT_LIMITS.max_json_depth)


@FAST
@given(st.integers(min_value=1, max_value=64), st.integers(min_value=1, max_value=64))
def test_strict_json_takes_nesting_up_to_its_limit_and_no_deeper(limit, depth):
    body = b'[{"a": ' * depth + b"1" + b"}]" * depth
    if 2 * depth <= limit:
        assert parse_strict(body, limit) is not None
    else:
        with pytest.raises(ValueError, match="nesting"):
            parse_strict(body, limit)


#: Any text, NUL and lone surrogates included: what a body's escapes can spell.
any_text = st.text(st.characters(), max_size=6)
any_values = st.recursive(
    st.none() | st.integers() | any_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3)
    ),
    max_leaves=10,
)


@FAST
@given(any_values, st.booleans(), st.integers(min_value=1, max_value=6))
def test_strict_json_refuses_nul_surrogates_and_depth_however_they_are_spelled(
    value, ascii_only, limit
):
    # The walk for NUL, lone surrogates and depth is skipped for bodies that cannot hold
    # them: its decision must not depend on the spelling (raw UTF-8 or \u escapes).
    text = json.dumps(value, ensure_ascii=ascii_only)
    raw = text.encode("utf-8", "surrogatepass")
    strings = [value] if isinstance(value, str) else []
    stack, deepest = [(value, 1)], 0
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = list(item.values()) if isinstance(item, dict) else item
            strings += [k for k in item if isinstance(k, str)] if isinstance(item, dict) else []
            strings += [c for c in children if isinstance(c, str)]
            stack += [(c, level + 1) for c in children]
    bad_text = any("\x00" in t or any(0xD800 <= ord(c) <= 0xDFFF for c in t) for t in strings)
    if bad_text or deepest > limit:
        with pytest.raises(ValueError):
            parse_strict(raw, limit)
    else:
        assert parse_strict(raw, limit) == value


# --- payload validation ---------------------------------------------------------------------

emails = st.from_regex(
    r"\A[a-z0-9%+_-]{1,10}(\.[a-z0-9%+_-]{1,8})?@[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?\.[a-z]{2,6}\Z"
)
#: Text for an e-mail header field (a name, a subject): one line.
one_line = clean_text.map(lambda s: s.replace("\r", "").replace("\n", ""))
welcome_payloads = st.fixed_dictionaries(
    {"email": emails, "name": one_line.filter(bool).map(lambda s: s[:200])},
    optional={"message": clean_text.map(lambda s: s[:10_000])},
)


@FAST
@given(welcome_payloads)
def test_every_well_formed_welcome_email_is_accepted(payload):
    submission = PARSER.parse({"type": "welcome-email", "payload": payload}, now_ms=0)
    assert submission.spec.name == "welcome-email" and submission.payload == payload


@FAST
@given(welcome_payloads, one_line, st.sampled_from(["\r", "\n", "\r\n"]), one_line)
def test_a_name_of_more_than_one_line_is_refused_at_the_name(payload, before, breaks, after):
    name = (before + breaks + after)[:200]
    with pytest.raises(InvalidRequest) as refused:
        PARSER.parse({"type": "welcome-email", "payload": {**payload, "name": name}}, now_ms=0)
    assert "/payload/name" in {p.pointer for p in refused.value.problems}


@FAST
@given(welcome_payloads, clean_text.filter(lambda k: k not in ("email", "name", "message")))
def test_an_unknown_payload_field_is_refused_at_the_payload(payload, extra):
    with pytest.raises(InvalidRequest) as refused:
        PARSER.parse({"type": "welcome-email", "payload": {**payload, extra: 1}}, now_ms=0)
    assert "/payload" in {p.pointer for p in refused.value.problems}


@FAST
@given(json_values.filter(lambda v: not isinstance(v, dict)))
def test_a_payload_that_is_not_an_object_is_refused(payload):
    with pytest.raises(InvalidRequest) as refused:
        PARSER.parse({"type": "dummy", "payload": payload}, now_ms=0)
    assert {p.pointer for p in refused.value.problems} == {"/payload"}


@FAST
@given(clean_text.filter(lambda t: builtin_job_types().find(t) is None and len(t) <= 100))
def test_an_unknown_type_is_refused_at_the_type(job_type):
    with pytest.raises(InvalidRequest) as refused:
        PARSER.parse({"type": job_type, "payload": {}}, now_ms=0)
    if job_type:
        assert isinstance(refused.value, UnknownJobType)
        assert [p.pointer for p in refused.value.problems] == ["/type"]


@FAST
@given(st.integers(min_value=INT64_MAX + 1) | st.integers(max_value=INT64_MIN - 1), clean_text)
def test_an_integer_outside_64_bits_is_refused_where_it_is(number, key):
    with pytest.raises(InvalidRequest) as refused:
        PARSER.parse({"type": "csv-export", "payload": {key: number}}, now_ms=0)
    escaped = key.replace("~", "~0").replace("/", "~1")
    assert f"/payload/{escaped}" in {p.pointer for p in refused.value.problems}


@FAST
@given(json_values, st.integers(min_value=1, max_value=50))
def test_the_payload_key_count_counts_every_member(payload, limit):
    def members(value: Any) -> int:
        if isinstance(value, dict):
            return len(value) + sum(members(v) for v in value.values())
        if isinstance(value, list):
            return sum(members(v) for v in value)
        return 0

    over = any(
        p.detail.startswith("the payload has")
        for p in payload_problems(payload, replace(DEFAULT_LIMITS, max_payload_keys=limit))
    )
    assert over == (members(payload) > limit)


# --- every job type bounds what it accepts --------------------------------------------------


def _unbounded(schema: Any, where: str = "") -> list[str]:
    """Places in a payload schema that accept unbounded strings, arrays, objects or durations."""
    if not isinstance(schema, dict):
        return []
    found = []
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if "string" in types and "maxLength" not in schema and "enum" not in schema:
        found.append(f"{where}: string without maxLength")
    if "array" in types and "maxItems" not in schema:
        found.append(f"{where}: array without maxItems")
    if "object" in types and schema.get("additionalProperties") is not False:
        if "maxProperties" not in schema:
            found.append(f"{where}: open object without maxProperties")
        if "maxLength" not in schema.get("propertyNames", {}):
            found.append(f"{where}: open object without a bound on its field names")
        if schema.get("additionalProperties") is None and "then" not in schema:
            found.append(f"{where}: open object accepting any value")
    for name, child in schema.get("properties", {}).items():
        if re.search(r"(Seconds|Ms)$", name) and "maximum" not in child:
            found.append(f"{where}/{name}: duration without maximum")
        found += _unbounded(child, f"{where}/{name}")
    for keyword in ("items", "additionalProperties", "then", "else"):
        found += _unbounded(schema.get(keyword), f"{where}({keyword})")
    return found


@pytest.mark.parametrize("spec", BUILTIN_SPECS, ids=lambda s: s.name)
def test_every_builtin_job_type_bounds_sizes_and_durations(spec):
    assert _unbounded(spec.payload_schema) == []


@FAST
@given(st.text(max_size=80) | emails | st.from_regex(r"\A[^@]{1,10}@[^@]{1,20}\Z"))
def test_the_payload_schema_and_the_mailer_agree_on_what_an_address_is(text):
    from jobcore.model.email_addresses import address_problem

    body = {"type": "email", "payload": {"to": text, "subject": "s", "body": "b"}}
    try:
        PARSER.parse(body, now_ms=0)
        accepted = True
    except InvalidRequest:
        accepted = False
    assert accepted == (address_problem(text) is None)
