"""API keys: who may call what. Off unless ``JOBCORE_API_KEYS`` names at least one key.

``JOBCORE_API_KEYS`` is a comma-separated list of ``name:role:secret``. The role is
``submit`` (create jobs and read everything) or ``admin`` (everything, including retry,
cancel and the dead-letter bulk operations). A client sends its secret as
``Authorization: Bearer <secret>`` or ``X-API-Key: <secret>``. Secrets are compared in
constant time as SHA-256 digests, and neither a secret nor a digest is ever logged or
shown: errors name the entry by position or name only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any

import falcon
from falcon.asgi import Request, Response

from jobcore.errors import ConfigurationError
from jobcore_api.problems import Problem
from jobcore_api.routes import Role, route_for

SUBMIT = "submit"
ADMIN = "admin"
ROLES = (SUBMIT, ADMIN)
#: Shortest secret accepted: a guessable key is no key.
MIN_SECRET_LENGTH = 16
#: What each key role may do: the route table says which a route needs.
_ALLOWED: dict[str, frozenset[Role]] = {
    SUBMIT: frozenset({Role.OPEN, Role.READ, Role.SUBMIT}),
    ADMIN: frozenset(Role),
}
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: What a secret may hold: printable ASCII, which every client sends in a header unchanged.
_SECRET = re.compile(r"[\x20-\x7e]*")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="jobcore"'}


@dataclass(frozen=True)
class ApiKey:
    """One configured key: its name (used in idempotency namespaces), role and digest."""

    name: str
    role: str
    digest: bytes = field(repr=False)

    @property
    def idempotency_namespace(self) -> str:
        """Idempotency keys sent with this API key live apart from every other caller's."""
        return f"apikey:{self.name}"


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def parse_api_keys(text: str) -> tuple[ApiKey, ...]:
    """The keys in a ``JOBCORE_API_KEYS`` value; ``ConfigurationError`` names a bad entry."""
    found: list[ApiKey] = []
    for position, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        parts = entry.split(":", 2)
        if len(parts) != 3:
            raise ConfigurationError(f"JOBCORE_API_KEYS entry {position} is not name:role:secret")
        name, role, secret = (p.strip() for p in parts)
        if not _NAME.match(name):
            raise ConfigurationError(
                f"JOBCORE_API_KEYS entry {position}: the name must be 1-64 of A-Z a-z 0-9 _ . -"
            )
        if role not in ROLES:
            raise ConfigurationError(
                f"JOBCORE_API_KEYS entry {name!r}: the role must be one of {', '.join(ROLES)}"
            )
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"JOBCORE_API_KEYS entry {name!r}: the secret must be at least "
                f"{MIN_SECRET_LENGTH} characters"
            )
        if not _SECRET.fullmatch(secret):
            raise ConfigurationError(
                f"JOBCORE_API_KEYS entry {name!r}: the secret must be printable ASCII "
                "(a header carries nothing else unchanged)"
            )
        if any(k.name == name for k in found):
            raise ConfigurationError(f"JOBCORE_API_KEYS names {name!r} twice")
        digest = _digest(secret)
        same = next((k for k in found if hmac.compare_digest(k.digest, digest)), None)
        if same is not None:
            # One secret must name one key: otherwise it would act with whichever came first.
            raise ConfigurationError(
                f"JOBCORE_API_KEYS entries {same.name!r} and {name!r} have the same secret; "
                "give every key its own"
            )
        found.append(ApiKey(name, role, digest))
    return tuple(found)


def may(key_role: str, needed: Role) -> bool:
    """Whether a key with ``key_role`` may call a route that needs ``needed``."""
    return needed in _ALLOWED[key_role]


def _presented(req: Request) -> str | None:
    """The secret the request carries, from ``Authorization: Bearer`` or ``X-API-Key``."""
    authorization = req.get_header("Authorization")
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    header = req.get_header("X-API-Key")
    return header.strip() if header and header.strip() else None


class ApiKeyAuth:
    """Falcon middleware: 401 without a known key, 403 when the key's role may not."""

    def __init__(self, keys: tuple[ApiKey, ...]) -> None:
        self.keys = keys

    def match(self, secret: str) -> ApiKey | None:
        """The key whose secret is ``secret``; every key is compared, in constant time each."""
        candidate = _digest(secret)
        matched = None
        for key in self.keys:
            if hmac.compare_digest(candidate, key.digest):
                matched = key
        return matched

    async def process_resource(
        self, req: Request, resp: Response, resource: Any, params: dict[str, Any]
    ) -> None:
        if resource is None:
            return  # no route: a 404, whoever asks
        route = route_for(req.uri_template, req.method)
        needed = route.role if route else Role.ADMIN
        if needed is Role.OPEN:
            return
        secret = _presented(req)
        if secret is None:
            raise Problem(
                falcon.HTTP_401,
                "API key required",
                "send an API key as Authorization: Bearer <key> or X-API-Key: <key>",
                headers=_CHALLENGE,
            )
        key = self.match(secret)
        if key is None:
            raise Problem(
                falcon.HTTP_401, "API key not recognised", "check the key", headers=_CHALLENGE
            )
        if not may(key.role, needed):
            raise Problem(
                falcon.HTTP_403,
                "Forbidden",
                f"API key {key.name!r} has the {key.role} role; "
                f"{req.method} {req.uri_template} needs {needed}",
            )
        req.context.api_key = key
        req.context.idempotency_namespace = key.idempotency_namespace
