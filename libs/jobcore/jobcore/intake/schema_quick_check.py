"""A quick yes for valid input: JSON Schemas compiled into plain functions by fastjsonschema.

jsonschema walks a schema keyword by keyword through generators: a tenth of an API
request's CPU for the envelope and a small payload. fastjsonschema compiles a schema into
one Python function; a valid instance passes it two to four times faster. It only says yes
or no: anything it refuses (or a schema it cannot compile) goes to jsonschema, which stays
the judge and writes every message (``submission.checked_problems``). Jobcore's schemas use
only keywords whose meaning is the same in fastjsonschema's draft 7 and in the 2020-12
dialect jsonschema applies; ``tests/test_quick_check.py`` holds the two to that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastjsonschema

from jobcore.model.email_addresses import EMAIL_FORMAT, address_problem

QuickCheck = Callable[[Any], bool]

#: The formats Jobcore asserts (``schema_formats.FORMAT_CHECKER``); others are annotations.
_FORMATS: dict[str, Callable[[str], bool]] = {
    EMAIL_FORMAT: lambda value: address_problem(value) is None,
}


def quick_check(schema: Any) -> QuickCheck | None:
    """A function saying whether ``schema`` accepts an instance, or ``None`` when the schema
    cannot be compiled (then jsonschema alone judges)."""
    try:
        validate = fastjsonschema.compile(schema, formats=_FORMATS)
    except (fastjsonschema.JsonSchemaDefinitionException, TypeError, ValueError):
        return None

    def accepts(instance: Any) -> bool:
        try:
            validate(instance)
        except (fastjsonschema.JsonSchemaException, RecursionError):
            return False
        return True

    return accepts
