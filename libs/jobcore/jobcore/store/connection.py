"""The Redis clients every Jobcore process uses: short timeouts, few retries, errors wrapped.

``REDIS_URL`` names one Redis or, in its Sentinel form (``jobcore.redis_url``), a primary that
Sentinels watch. A Sentinel client asks the Sentinels for the primary on every new connection
and drops its connections when the primary changes, so a failover needs no restart: a call
that meets the demoted primary (``READONLY``) or a dead one fails over to a new connection
once, and otherwise fails as ``StoreUnavailable`` (a ``503`` for the API, a wait for a
worker). ``connect`` and ``connect_async`` take the same options from ``client_options``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.sentinel
from redis.backoff import ConstantBackoff
from redis.retry import Retry

from jobcore.errors import ConfigurationError, StoreUnavailable, StoreUnreachable
from jobcore.redis_url import SentinelTarget, is_sentinel_url, parse_sentinel_url
from jobcore.settings import Settings

#: Reconnect attempts on a dropped connection before the call fails.
RETRIES_ON_ERROR = 1
#: Pause between those attempts, in seconds.
RETRY_PAUSE = 0.05
#: Seconds between health checks of an idle pooled connection.
HEALTH_CHECK_INTERVAL = 30
#: Error prefixes of a Redis that is up but refuses work for now (full, loading, replica).
_REFUSALS = ("OOM", "LOADING", "READONLY", "MASTERDOWN", "NOREPLICAS", "BUSY")
#: Redis's answer to SELECT of a database it does not have.
_NO_SUCH_DB = "DB index is out of range"


def client_options(
    settings: Settings, *, timeout: float | None = None, decode_responses: bool = True
) -> dict[str, Any]:
    """Options of every Jobcore connection, sync or async (without ``retry``, whose class
    differs): calls fail within about one ``timeout``."""
    seconds = settings.redis_timeout if timeout is None else timeout
    return {
        "socket_timeout": seconds,
        "socket_connect_timeout": seconds,
        # A hung Redis must fail the call within one timeout: never wait out a second one.
        "retry_on_timeout": False,
        "health_check_interval": HEALTH_CHECK_INTERVAL,
        "decode_responses": decode_responses,
        # Jobcore writes UTF-8; bytes that are not (a record damaged by hand) read as U+FFFD,
        # so one damaged record never turns a read or a listing into an error.
        "encoding_errors": "replace",
    }


def connect(
    settings: Settings, *, timeout: float | None = None, decode_responses: bool = True
) -> redis.Redis:
    """A client for ``settings.redis_url`` whose calls fail within about one ``timeout``."""
    options = client_options(settings, timeout=timeout, decode_responses=decode_responses)
    # Reconnect once on a dropped connection (a restarted Redis, a failover), no more.
    options["retry"] = Retry(
        ConstantBackoff(RETRY_PAUSE), RETRIES_ON_ERROR, supported_errors=(redis.ConnectionError,)
    )
    if is_sentinel_url(settings.redis_url):
        target = parse_sentinel_url(settings.redis_url)
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            target.sentinels, sentinel_kwargs=_sentinel_options(target, options)
        )
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service, **_primary_options(target, options)
        )
        return client
    return redis.Redis.from_url(settings.redis_url, **options)


def connect_async(
    settings: Settings, *, timeout: float | None = None, decode_responses: bool = True
) -> redis.asyncio.Redis:
    """The asynchronous twin of ``connect`` (same URL forms, timeouts and retries)."""
    options = client_options(settings, timeout=timeout, decode_responses=decode_responses)
    options["retry"] = redis.asyncio.retry.Retry(
        ConstantBackoff(RETRY_PAUSE), RETRIES_ON_ERROR, supported_errors=(redis.ConnectionError,)
    )
    if is_sentinel_url(settings.redis_url):
        target = parse_sentinel_url(settings.redis_url)
        sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            target.sentinels, sentinel_kwargs=_sentinel_options(target, options)
        )
        async_client: redis.asyncio.Redis = sentinel.master_for(
            target.service, **_primary_options(target, options)
        )
        return async_client
    return redis.asyncio.Redis.from_url(settings.redis_url, **options)


def _tls_options(target: SentinelTarget) -> dict[str, Any]:
    if not target.tls:
        return {}
    tls: dict[str, Any] = {"ssl": True, "ssl_cert_reqs": target.ssl_cert_reqs}
    if target.ssl_ca_certs:
        tls["ssl_ca_certs"] = target.ssl_ca_certs
    return tls


def _sentinel_options(target: SentinelTarget, options: dict[str, Any]) -> dict[str, Any]:
    """How to talk to the Sentinels themselves: the same timeouts, their own login."""
    asked = {
        "socket_timeout": options["socket_timeout"],
        "socket_connect_timeout": options["socket_connect_timeout"],
        "decode_responses": True,
        **_tls_options(target),
    }
    if target.sentinel_username:
        asked["username"] = target.sentinel_username
    if target.sentinel_password:
        asked["password"] = target.sentinel_password
    return asked


def _primary_options(target: SentinelTarget, options: dict[str, Any]) -> dict[str, Any]:
    primary = {**options, "db": target.db, **_tls_options(target)}
    if target.username:
        primary["username"] = target.username
    if target.password:
        primary["password"] = target.password
    return primary


class _StoreErrors:
    """The block of ``store_errors``: stateless, so one serves every call (a class, not a
    generator-based context manager, which builds a generator each time it is entered:
    every store operation enters one)."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if isinstance(exc, redis.RedisError):
            translated = as_store_error(exc)
            if translated is not exc:
                raise translated from exc


_STORE_ERRORS = _StoreErrors()


def store_errors() -> AbstractContextManager[None]:
    """Turn redis-py's connection, timeout and refusal errors into ``StoreUnavailable``."""
    return _STORE_ERRORS


def as_store_error(exc: redis.RedisError) -> Exception:
    """What a redis-py error means to Jobcore: ``StoreUnavailable`` for an unreachable Redis
    or one that refuses work for now, ``ConfigurationError`` for a missing database, and
    otherwise the error itself (a bug, or a script's own refusal)."""
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        # Includes a Sentinel naming no primary (mid-failover) and a demoted primary.
        return StoreUnreachable(f"Redis is unreachable: {exc}")
    if isinstance(exc, redis.exceptions.OutOfMemoryError | redis.exceptions.ReadOnlyError):
        # redis-py strips the "OOM"/"READONLY" prefix when it picks these classes.
        return StoreUnavailable(f"Redis refused the command: {exc}")
    if isinstance(exc, redis.ResponseError):
        message = str(exc)
        if _NO_SUCH_DB in message:
            # SELECT on connecting: a setting to fix, not an outage to wait out.
            return ConfigurationError(
                f"REDIS_URL names a database this Redis does not have ({message}; "
                "its `databases` setting bounds them)"
            )
        # Inside a Lua script the refusal comes wrapped: "Error running script ...: -OOM ...".
        if message.startswith(_REFUSALS) or any(f"-{r} " in message for r in _REFUSALS):
            return StoreUnavailable(f"Redis refused the command: {message}")
    return exc
