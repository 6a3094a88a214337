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
#: Error prefixes of a Redis that is up but refuses work for now (full, loading, replica).
_REFUSALS = ("OOM", "LOADING", "READONLY", "MASTERDOWN", "BUSY")


def connect(
    settings: Settings, *, timeout: float | None = None, decode_responses: bool = True
) -> redis.Redis:
    """A client for ``settings.redis_url`` whose calls fail within about one ``timeout``."""
    seconds = settings.redis_timeout if timeout is None else timeout
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=seconds,
        socket_connect_timeout=seconds,
        # Reconnect once on a dropped connection (a restarted Redis), but never wait out a
        # second timeout: a hung Redis must fail the call within one timeout.
        retry=Retry(
            ConstantBackoff(RETRY_PAUSE),
            RETRIES_ON_ERROR,
            supported_errors=(redis.ConnectionError,),
        ),
        retry_on_timeout=False,
        health_check_interval=30,
        decode_responses=decode_responses,
    )


@contextmanager
def store_errors() -> Iterator[None]:
    """Turn redis-py's connection, timeout and out-of-memory errors into ``StoreUnavailable``."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailable(f"Redis is unreachable: {exc}") from exc
    except (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError) as exc:
        # redis-py strips the "OOM"/"READONLY" prefix when it picks these classes.
        raise StoreUnavailable(f"Redis refused the command: {exc}") from exc
    except redis.ResponseError as exc:
        message = str(exc)
        # Inside a Lua script the refusal comes wrapped: "Error running script ...: -OOM ...".
        if message.startswith(_REFUSALS) or any(f"-{r} " in message for r in _REFUSALS):
            raise StoreUnavailable(f"Redis refused the command: {message}") from exc
        raise
