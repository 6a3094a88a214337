"""The Redis client every Jobcore process uses: short timeouts, few retries, errors wrapped."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.backoff import ConstantBackoff
from redis.retry import Retry

from jobcore.errors import StoreUnavailable
from jobcore.settings import Settings

#: Reconnect attempts on a dropped connection before the call fails.
RETRIES_ON_ERROR = 1
#: Pause between those attempts, in seconds.
RETRY_PAUSE = 0.05


def connect(settings: Settings, *, timeout: float | None = None) -> redis.Redis:
    """A client for ``settings.redis_url`` that fails within about ``2 * timeout``."""
    seconds = settings.redis_timeout if timeout is None else timeout
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=seconds,
        socket_connect_timeout=seconds,
        retry=Retry(ConstantBackoff(RETRY_PAUSE), RETRIES_ON_ERROR),
        retry_on_timeout=False,
        health_check_interval=30,
        decode_responses=True,
    )


@contextmanager
def store_errors() -> Iterator[None]:
    """Turn redis-py's connection, timeout and out-of-memory errors into ``StoreUnavailable``."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailable(f"Redis is unreachable: {exc}") from exc
    except redis.ResponseError as exc:
        message = str(exc)
        if message.startswith(("OOM", "LOADING", "READONLY", "MASTERDOWN", "BUSY")):
            raise StoreUnavailable(f"Redis refused the command: {message}") from exc
        raise
