"""What Jobcore accepts as an e-mail address, for the payload schema and the mailer alike.

An address is ``local@domain``, internationalised addresses included (RFC 6531):

- the local part: 1 to 64 bytes of UTF-8, no spaces, control characters or any of
  ``"(),:;<>[\\]``, no leading, trailing or doubled dot (no quoted local parts);
- the domain: at least two dot-separated labels of letters, digits and hyphens (any
  script), none starting or ending with a hyphen, that IDNA can encode into at most
  253 ASCII characters.

Payload schemas name it ``"format": "idn-email"``; the API checks that format with
``address_problem``, and the mailer builds the SMTP envelope with ``envelope_address``.
"""

from __future__ import annotations

import re

#: The JSON Schema format of an e-mail address in Jobcore's payloads.
EMAIL_FORMAT = "idn-email"
#: A value that goes into an e-mail header field (a subject, a name): one line. Not ``$`` at
#: the end: Python's ``$`` also matches before a final newline; "nothing follows" reads the
#: same in Python and in ECMA-262 (the regex dialect of JSON Schema and OpenAPI).
HEADER_TEXT_PATTERN = r"^[^\r\n]*(?![\s\S])"
#: Longest address, in characters (RFC 5321's path limit less the brackets).
MAX_ADDRESS = 254
#: Longest local part, in bytes of UTF-8.
MAX_LOCAL_BYTES = 64
#: Longest domain once IDNA-encoded, in ASCII characters.
MAX_DOMAIN = 253

_LOCAL_FORBIDDEN = re.compile(r'[\s"(),:;<>\[\\\]\x00-\x1f\x7f-\x9f]')


class AddressError(ValueError):
    """The text is not an address Jobcore can send to; the message says why."""


def ascii_domain(domain: str) -> str:
    """The domain as the SMTP envelope and DNS spell it (IDNA A-labels)."""
    labels = domain.split(".")
    if any(not label for label in labels):
        raise AddressError("the domain has an empty label (two dots, or a dot at an end)")
    if len(labels) < 2:
        raise AddressError("the domain needs at least two labels, like example.com")
    for label in labels:
        if label.startswith("-") or label.endswith("-"):
            raise AddressError("a domain label must not start or end with a hyphen")
        if not all(char.isalnum() or char == "-" for char in label):
            raise AddressError("a domain label may hold only letters, digits and hyphens")
    try:
        encoded = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise AddressError("the domain cannot be encoded for DNS (IDNA)") from exc
    if len(encoded) > MAX_DOMAIN:
        raise AddressError(f"the domain is longer than {MAX_DOMAIN} characters")
    return encoded


def split_address(address: str) -> tuple[str, str]:
    """``(local, domain)`` of a valid address; ``AddressError`` saying what is wrong."""
    if len(address) > MAX_ADDRESS:
        raise AddressError(f"an address has at most {MAX_ADDRESS} characters")
    if address.count("@") != 1:
        raise AddressError("an address has exactly one @")
    local, domain = address.split("@")
    if not local:
        raise AddressError("the part before @ is empty")
    if len(local.encode("utf-8", "surrogatepass")) > MAX_LOCAL_BYTES:
        raise AddressError(f"the part before @ is longer than {MAX_LOCAL_BYTES} bytes")
    if _LOCAL_FORBIDDEN.search(local):
        raise AddressError('the part before @ must not hold spaces, controls or "(),:;<>[\\]')
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise AddressError("the part before @ must not start or end with a dot, or hold two")
    ascii_domain(domain)
    return local, domain


def address_problem(address: object) -> str | None:
    """Why ``address`` is not an e-mail address Jobcore sends to, or ``None``."""
    if not isinstance(address, str):
        return None  # the schema's "type" speaks to that
    try:
        split_address(address)
    except AddressError as exc:
        return str(exc)
    return None


def needs_smtputf8(address: str) -> bool:
    """Whether sending to ``address`` needs the server's SMTPUTF8 extension: its local part
    is not ASCII (a non-ASCII domain is sent IDNA-encoded instead)."""
    local, _domain = split_address(address)
    return not local.isascii()


def envelope_address(address: str, *, smtputf8: bool) -> str:
    """The address as the SMTP envelope carries it: the domain IDNA-encoded unless the
    session uses SMTPUTF8, in which case it is sent as written."""
    local, domain = split_address(address)
    return address if smtputf8 else f"{local}@{ascii_domain(domain)}"
