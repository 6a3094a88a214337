"""The broker of the bare-Dramatiq comparison: Jobcore's broker settings, without Jobcore."""

from __future__ import annotations

import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import ShutdownNotifications, TimeLimit

from jobcore.settings import Settings

#: Queue of the no-op actors, the same as the ``dummy`` job type's.
QUEUE = "default"
#: Redis list where ``latency_probe`` pushes ``<sent ms> <started ms>``.
LATENCY_KEY = "bench:latency"
#: Redis list, one per probe token, where ``sleep_probe`` pushes the ms of each start.
STARTS_KEY = "bench:starts:{token}"


def bare_broker(redis_url: str, namespace: str = "dramatiq") -> RedisBroker:
    """A RedisBroker as ``jobcore.broker.build_broker`` makes it, minus Jobcore's middleware."""
    defaults = Settings()
    return RedisBroker(  # type: ignore[no-untyped-call]
        client=redis.Redis.from_url(redis_url),
        namespace=namespace,
        heartbeat_timeout=int(defaults.broker_heartbeat_timeout * 1000),
        maintenance_chance=defaults.broker_maintenance_chance,
        middleware=[TimeLimit(), ShutdownNotifications()],
    )
