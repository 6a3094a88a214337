"""The JSON Schema formats Jobcore asserts in payloads (others stay annotations)."""

from __future__ import annotations

from jsonschema import FormatChecker

from jobcore.model.email_addresses import EMAIL_FORMAT, AddressError, split_address

#: Checks only Jobcore's formats, so a payload schema using another format is not refused
#: for it (JSON Schema 2020-12 treats ``format`` as an annotation by default).
FORMAT_CHECKER = FormatChecker(formats=())


@FORMAT_CHECKER.checks(EMAIL_FORMAT, raises=AddressError)
def _is_email_address(instance: object) -> bool:
    if isinstance(instance, str):
        split_address(instance)
    return True
