"""Reads at scale: status, list and stats latency with many stored finished records, and
Redis memory per finished record.

Records are copies of a real finished ``dummy`` job (its hash, history included), written
with pipelines together with its index entry and the idempotency key a submission leaves.
"""

from __future__ import annotations

import http.client
import json
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis

from jobcore.intake.idempotency import CLIENT_NAMESPACE, digest, fingerprint
from jobcore.store import keys

#: Records written per pipeline.
BATCH = 1000
#: Requests timed per read and per scale.
REQUESTS = 200


@dataclass(frozen=True)
class RecordTemplate:
    """A finished job as Redis holds it: the record's fields, its history among them."""

    fields: dict[str, str]
    idempotency_ttl_ms: int

    @classmethod
    def capture(cls, client: redis.Redis, job_id: str, window_ms: int) -> RecordTemplate:
        fields = client.hgetall(keys.job(job_id))
        if fields.get("state") != "completed":
            raise RuntimeError(f"template job {job_id} is {fields.get('state')!r}, not completed")
        return cls(dict(fields), window_ms)

    @property
    def state(self) -> str:
        return self.fields["state"]

    @property
    def type(self) -> str:
        return self.fields["type"]


def record_memory(client: redis.Redis, job_id: str) -> dict[str, Any]:
    """``MEMORY USAGE`` and encoding of one record (indexes and idempotency key not included)."""
    record = int(client.memory_usage(keys.job(job_id), samples=0) or 0)
    return {"record_bytes": record, "encoding": client.object("encoding", keys.job(job_id))}


def fill(client: redis.Redis, template: RecordTemplate, first_seq: int, count: int) -> list[str]:
    """Write ``count`` finished records after sequence number ``first_seq``; their ids."""
    ids = []
    state, job_type = template.state, template.type
    for start in range(0, count, BATCH):
        pipe = client.pipeline(transaction=False)
        batch: dict[str, int] = {}
        for seq in range(first_seq + start, first_seq + min(start + BATCH, count)):
            job_id = secrets.token_urlsafe(12)
            batch[job_id] = seq
            fields = dict(template.fields, seq=str(seq))
            pipe.hset(keys.job(job_id), mapping=fields)
            pipe.set(
                keys.idempotency(CLIENT_NAMESPACE, digest(job_id)),
                f"{job_id} {fingerprint(job_type, {'seq': seq}, {})}",
                px=template.idempotency_ttl_ms,
            )
        pipe.sadd(keys.TYPES, job_type)
        pipe.zadd(keys.index_state_type(state, job_type), batch)
        pipe.execute()
        ids.extend(batch)
    client.set(keys.SEQUENCE, first_seq + count)
    return ids


def time_reads(host: str, port: int, ids: list[str]) -> dict[str, dict[str, float]]:
    """p50/p99 in ms of each read over one keep-alive connection."""
    connection = http.client.HTTPConnection(host, port, timeout=10)
    reads = {
        "status": lambda: f"/jobs/{random.choice(ids)}/status",
        "list": lambda: "/jobs?limit=50",
        "list_by_state": lambda: "/jobs?state=completed&type=dummy&limit=50",
        "stats": lambda: "/jobs/stats",
    }
    timed: dict[str, dict[str, float]] = {}
    for name, path in reads.items():
        samples = []
        for _ in range(REQUESTS):
            started = time.perf_counter()
            connection.request("GET", path())
            response = connection.getresponse()
            body = response.read()
            samples.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise RuntimeError(f"GET {path()} answered {response.status}: {body[:200]!r}")
        samples.sort()
        timed[name] = {
            "p50": round(samples[len(samples) // 2], 2),
            "p99": round(samples[min(len(samples) - 1, int(0.99 * len(samples)))], 2),
        }
    connection.close()
    return timed


def scale_bench(
    client: redis.Redis, template: RecordTemplate, sizes: list[int], host: str, port: int
) -> dict[str, Any]:
    """Grow the store to each size in turn; time the reads and the memory at each."""
    # Requests of the HTTP part may still be finishing: let them land before the flush.
    time.sleep(1.0)
    client.flushall()
    baseline = int(client.info("memory")["used_memory"])
    results: dict[str, Any] = {}
    ids: list[str] = []
    for size in sorted(sizes):
        started = time.perf_counter()
        ids += fill(client, template, len(ids) + 1, size - len(ids))
        filled = time.perf_counter() - started
        used = int(client.info("memory")["used_memory"])
        stats = json.loads(_get(host, port, "/jobs/stats"))
        if stats["total"] != size:
            raise RuntimeError(f"stats count {stats['total']} records, {size} were written")
        results[str(size)] = {
            "fill_seconds": round(filled, 2),
            "memory_bytes_per_record": round((used - baseline) / size, 1),
            "reads_ms": time_reads(host, port, ids),
        }
    results["one_record"] = record_memory(client, ids[0])
    return results


def _get(host: str, port: int, path: str) -> bytes:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("GET", path)
    body = connection.getresponse().read()
    connection.close()
    return body
