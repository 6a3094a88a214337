"""How Jobcore's own ``redis-server`` processes run (``make run``, the bench, the tests);
docker-compose.yml passes the same settings to its Redis, and the README asks the same of
any Redis given in ``REDIS_URL``."""

from __future__ import annotations

#: ``redis-server`` arguments every Jobcore deployment should have:
#: ``noeviction`` — a full Redis refuses writes (the API answers 503) rather than dropping
#: records, queue entries or locks; ``hash-max-ziplist-value 1024``
#: (Redis 7 also calls it ``hash-max-listpack-value``) — a job record whose
#: values (payload, result, history) stay under 1 KiB each is kept as a compact listpack,
#: about a third of the memory of a hash table (Redis's default limit is 64 bytes).
RECOMMENDED_ARGS: tuple[str, ...] = (
    "--maxmemory-policy",
    "noeviction",
    "--hash-max-ziplist-value",
    "1024",
)
