"""JSON text by orjson is the standard library's, byte for byte, wherever Jobcore uses it."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from jobcore import json_text
from jobcore.intake.idempotency import fingerprint

#: Text as the strict parser lets it through: any code point but lone surrogates (NUL and
#: control characters included: the encoders must escape them alike).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
#: JSON values without floats, integers within 64 bits.
WHOLE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


@given(WHOLE)
def test_without_floats_each_text_is_the_standard_librarys(value: Any) -> None:
    assert json_text.compact(value, floats=False) == json.dumps(
        value, separators=(",", ":"), ensure_ascii=False
    )
    assert json_text.canonical(value, floats=False) == json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, sort_keys=True
    )
    # Dramatiq's encoder: ASCII, non-ASCII escaped.
    assert json_text.compact_ascii(value) == json.dumps(value, separators=(",", ":")).encode()
    assert json.loads(json_text.answer(value)) == value


@given(st.recursive(st.floats(allow_nan=False) | st.integers(), st.lists, max_leaves=6))
def test_floats_keep_the_standard_librarys_spelling(value: Any) -> None:
    assert json_text.compact(value) == json.dumps(value, separators=(",", ":"))
    assert json_text.canonical(value) == json.dumps(value, separators=(",", ":"), sort_keys=True)


def test_a_value_orjson_refuses_goes_to_the_standard_library() -> None:
    huge = {"n": 2**64 + 1, 1: "integer key"}
    plain = json.dumps(huge, separators=(",", ":"), ensure_ascii=False)
    assert json_text.compact(huge, floats=False) == plain
    assert json.loads(json_text.answer(huge)) == {"n": 2**64 + 1, "1": "integer key"}
    assert json_text.compact_ascii({"queue": "é"}) == b'{"queue":"\\u00e9"}'


def test_any_value_jobcore_holds_can_be_answered() -> None:
    # A lone surrogate (from a damaged record) and DEL, which Dramatiq's encoder escapes.
    assert json.loads(json_text.answer({"echo": "\ud800"})) == {"echo": "\ud800"}
    assert json_text.compact_ascii({"a": "\x7f"}) == b'{"a":"\\u007f"}'


def test_a_fingerprint_does_not_depend_on_which_encoder_wrote_it() -> None:
    payload = {"to": "ü@example.com", "n": [1, 2, {"b": None, "a": True}]}
    options = {"maxAttempts": 3}
    assert fingerprint("email", payload, options, floats=False) == fingerprint(
        "email", payload, options
    )
