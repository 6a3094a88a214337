"""What ``REDIS_URL`` names: one Redis (redis-py's own URL forms) or a Sentinel-watched
primary, which redis-py has no URL for. Parsing only; ``store.connection`` builds clients.

The Sentinel form::

    redis+sentinel://[[username]:password@]host:port[,host:port...]/service_name[/db][?options]
    rediss+sentinel://...   the same over TLS (to the Sentinels and to Redis)

``username``/``password`` are Redis's (the primary's and replicas'); the Sentinels' own
credentials and the TLS details are options: ``sentinel_username``, ``sentinel_password``,
``ssl_ca_certs`` (a CA bundle path) and ``ssl_cert_reqs`` (``required``, ``optional`` or
``none``). A Sentinel's port defaults to 26379.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

#: URL schemes of one Redis (redis-py's own forms).
DIRECT_SCHEMES = ("redis", "rediss", "unix")
#: URL schemes of a primary found through Sentinel (plain and TLS).
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
#: Every scheme ``REDIS_URL`` may use.
SCHEMES = DIRECT_SCHEMES + SENTINEL_SCHEMES
#: Port of a Sentinel named without one (Sentinel's own default).
DEFAULT_SENTINEL_PORT = 26379
#: Options a Sentinel URL takes after ``?``.
SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password", "ssl_ca_certs", "ssl_cert_reqs")
#: Values of ``ssl_cert_reqs``.
CERT_REQS = ("required", "optional", "none")
#: Options a URL of one Redis takes after ``?`` (``db`` too, for ``unix://``).
DIRECT_OPTIONS = ("db", "client_name", "protocol", "socket_keepalive", "max_connections")
#: Options of a ``rediss://`` URL besides those.
TLS_OPTIONS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")
#: redis-py's options that would override Jobcore's bound on every call.
TIMEOUT_OPTIONS = ("socket_timeout", "socket_connect_timeout", "timeout", "retry_on_timeout")
#: Redis numbers its databases with a C int.
MAX_DB = 2**31 - 1
_BOOLEANS = ("true", "false", "yes", "no", "1", "0")


class RedisUrlError(ValueError):
    """``REDIS_URL`` is malformed; the message says what to fix (without its password)."""


@dataclass(frozen=True)
class SentinelTarget:
    """A primary that Sentinels watch under ``service``: where to ask, and how to log in."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)
    tls: bool = False
    ssl_ca_certs: str | None = None
    ssl_cert_reqs: str = "required"


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SENTINEL_SCHEMES


def redacted(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        userinfo, _, hosts = authority.rpartition("@")
        user = userinfo.split(":", 1)[0] if ":" in userinfo else ""
        authority = f"{user}:***@{hosts}" if ":" in userinfo else f"{userinfo}@{hosts}"
    query = ""
    if "?" in tail:
        tail, _, raw_query = tail.partition("?")
        pairs = [
            f"{name}={'***' if 'password' in name else value}"
            for name, value in parse_qsl(raw_query, keep_blank_values=True)
        ]
        query = "?" + "&".join(pairs)
    return f"{scheme}://{authority}{slash}{tail}{query}"


def parse_sentinel_url(url: str) -> SentinelTarget:
    """The Sentinel target a ``redis+sentinel://`` URL names; ``RedisUrlError`` otherwise."""
    shown = redacted(url)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SENTINEL_SCHEMES:
        raise RedisUrlError(f"{shown!r} is not a Sentinel URL (redis+sentinel://...)")
    rest, _, raw_query = rest.partition("?")
    authority, _, path = rest.partition("/")
    username = password = None
    if "@" in authority:
        userinfo, _, authority = authority.rpartition("@")
        if ":" in userinfo:
            user, _, secret = userinfo.partition(":")
            username, password = unquote(user) or None, unquote(secret)
        else:
            username = unquote(userinfo) or None
    sentinels = tuple(_sentinel_address(each, shown) for each in authority.split(","))
    segments = [unquote(s) for s in path.split("/")] if path else []
    if not segments or not segments[0]:
        raise RedisUrlError(
            f"{shown!r} names no service: the path must be /service_name[/db] "
            "(the name the Sentinels monitor)"
        )
    if len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise RedisUrlError(
            f"{shown!r}: after the hosts comes /service_name[/db], with db a number"
        )
    options = dict(parse_qsl(raw_query, keep_blank_values=True)) if raw_query else {}
    unknown = sorted(set(options) - set(SENTINEL_OPTIONS))
    if unknown:
        raise RedisUrlError(
            f"{shown!r}: unknown option(s) {', '.join(unknown)} "
            f"(a Sentinel URL takes {', '.join(SENTINEL_OPTIONS)})"
        )
    cert_reqs = options.get("ssl_cert_reqs", "required")
    if cert_reqs not in CERT_REQS:
        raise RedisUrlError(f"{shown!r}: ssl_cert_reqs must be one of {', '.join(CERT_REQS)}")
    return SentinelTarget(
        sentinels=sentinels,
        service=segments[0],
        db=int(segments[1]) if len(segments) == 2 else 0,
        username=username,
        password=password,
        sentinel_username=options.get("sentinel_username") or None,
        sentinel_password=options.get("sentinel_password") or None,
        tls=scheme.lower() == "rediss+sentinel",
        ssl_ca_certs=options.get("ssl_ca_certs") or None,
        ssl_cert_reqs=cert_reqs,
    )


def _sentinel_address(text: str, shown: str) -> tuple[str, int]:
    if not text:
        raise RedisUrlError(f"{shown!r} names no Sentinel host (host:port,host:port,...)")
    try:
        parts = urlsplit(f"//{text}")
        port = parts.port
    except ValueError:
        raise RedisUrlError(f"{shown!r}: {text!r} is not host:port") from None
    if not parts.hostname:
        raise RedisUrlError(f"{shown!r}: {text!r} names no host")
    if port == 0:
        raise RedisUrlError(f"{shown!r}: the port of {text!r} must be 1-65535")
    return parts.hostname, port or DEFAULT_SENTINEL_PORT


def direct_url_problem(url: str) -> str | None:
    """What is wrong with a URL of one Redis (``redis://``, ``rediss://``, ``unix://``)."""
    shown = redacted(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{shown!r} is not a Redis URL ({exc})"
    if parts.scheme not in DIRECT_SCHEMES:
        schemes = ", ".join(f"{s}://" for s in SCHEMES)
        return f"{shown!r} is not a Redis URL: it must start with one of {schemes}"
    if parts.scheme == "unix":
        if not parts.path:
            return f"{shown!r} names no socket path"
        return _direct_options_problem(shown, parts.scheme, parts.query)
    if not parts.hostname:
        return f"{shown!r} names no host"
    if port == 0:
        return f"{shown!r}: the port must be 1-65535"
    db = parts.path.strip("/")
    if db and not db.isdigit():
        return f"{shown!r}: the database after the host must be a number, not {db!r}"
    if db and int(db) > MAX_DB:
        return f"{shown!r}: the database must be 0-{MAX_DB}"
    return _direct_options_problem(shown, parts.scheme, parts.query)


def _direct_options_problem(shown: str, scheme: str, query: str) -> str | None:
    """What is wrong with the options after ``?`` of a URL of one Redis: redis-py would
    take an unknown one as a keyword and fail on every call, not at start."""
    allowed = DIRECT_OPTIONS + (TLS_OPTIONS if scheme == "rediss" else ())
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in TIMEOUT_OPTIONS:
            return (
                f"{shown!r}: {name} is Jobcore's to set; use JOBCORE_REDIS_TIMEOUT "
                "(every call fails within it)"
            )
        if name in TLS_OPTIONS and name not in allowed:
            return f"{shown!r}: {name} is a TLS option, only with rediss://"
        if name not in allowed:
            return f"{shown!r}: unknown option(s) {name} (it takes {', '.join(allowed)})"
        problem = _option_value_problem(name, value)
        if problem:
            return f"{shown!r}: {problem}"
    return None


def _option_value_problem(name: str, value: str) -> str | None:
    if name == "db" and not (value.isdigit() and int(value) <= MAX_DB):
        return f"db must be 0-{MAX_DB}"
    if name == "protocol" and value not in ("2", "3"):
        return "protocol must be 2 or 3"
    if name == "max_connections" and not (value.isdigit() and int(value) > 0):
        return "max_connections must be a whole number above 0"
    if name in ("socket_keepalive", "ssl_check_hostname") and value.lower() not in _BOOLEANS:
        return f"{name} must be one of {', '.join(_BOOLEANS)}"
    if name == "ssl_cert_reqs" and value not in CERT_REQS:
        return f"ssl_cert_reqs must be one of {', '.join(CERT_REQS)}"
    return None


def redis_url_problem(url: str) -> str | None:
    """What is wrong with ``REDIS_URL``, or ``None``: checked at start, so a typo is one
    clear line instead of a traceback from the first call."""
    if is_sentinel_url(url):
        try:
            parse_sentinel_url(url)
        except RedisUrlError as exc:
            return str(exc)
        return None
    return direct_url_problem(url)
