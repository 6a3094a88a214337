"""The cost of replica acknowledgement: ``POST /jobs`` and a drain with
``JOBCORE_MIN_REPLICAS_ACK`` 0 and 1, on a primary with one replica (both on loopback).

With 1, the create script, each side-effect reservation and the end of each attempt wait for
the replica (``WAIT`` after a write of ``keys.REPLICATION_MARK``); with 0 the same primary and
replica run, but nothing waits. Each setting gets fresh workers and a fresh API; the
replica's lag on loopback is the smallest a deployment sees, so these figures are a floor.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis

from bench.config import BenchConfig
from bench.http_phase import HERE, run_wrk, wrk_available
from bench.processes import api_server, jobcore_workers, wait_http
from bench.producers import JobcoreProducer
from bench.queue_phases import QueueBench
from jobcore.settings import Settings
from jobcore_devstack.redis_server import RedisServer, free_port

#: The settings compared, in the order the table shows them.
SETTINGS = (0, 1)


def start_pair(tmp: Path) -> tuple[RedisServer, RedisServer]:
    """A primary and its replica, persistence off like the rest of the bench."""
    primary = RedisServer(tmp / "ack-primary", extra_args=("--appendonly", "no")).start()
    replica = RedisServer(
        tmp / "ack-replica",
        extra_args=("--appendonly", "no", "--replicaof", "127.0.0.1", str(primary.port)),
    ).start()
    client = redis.Redis(port=primary.port, decode_responses=True)
    deadline = time.monotonic() + 30
    while client.info("replication").get("connected_slaves", 0) < 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the bench's replica did not connect")
        time.sleep(0.1)
    return primary, replica


def replica_ack_bench(
    config: BenchConfig, env: dict[str, str], tmp: Path, run_id: str, say: Any
) -> dict[str, Any]:
    """Drain and ``POST /jobs`` figures for each setting of ``SETTINGS``."""
    primary, replica = start_pair(tmp)
    client = redis.Redis(port=primary.port, decode_responses=True)
    results: dict[str, Any] = {}
    try:
        for acks in SETTINGS:
            name = f"acks_{acks}"
            client.flushall()
            ack_env = env | {
                "REDIS_URL": primary.url,
                "JOBCORE_MIN_REPLICAS_ACK": str(acks),
                "JOBCORE_WORKER_METRICS_PORT": str(free_port()),
            }
            settings = Settings.from_env(ack_env)
            trips = tmp / f"trips-{name}"
            trips.mkdir(exist_ok=True)
            workers = jobcore_workers(
                ack_env | {"BENCH_ROUNDTRIP_DIR": str(trips)},
                config.processes,
                config.threads,
                tmp / f"{name}-workers.log",
            )
            bench = QueueBench(
                JobcoreProducer(settings, f"{run_id}-{name}"),
                workers,
                client,
                trips,
                config.processes,
                fill_processes=config.fill_processes,
                run_id=f"{run_id}-{name}",
            )
            say(f"replica ack {acks}: drain of {config.ack_jobs} pre-filled jobs")
            workers.start()
            try:
                bench.warm_up(min(config.warmup, 200))
                bench.drain(config.ack_jobs)
            finally:
                workers.stop()
            results[name] = {
                "drain": bench.results["drain"],
                "producer": bench.results["producer"],
                "redis_cost": {
                    k: v for k, v in bench.results["redis_cost"].items() if not isinstance(v, dict)
                },
            }
            if wrk_available():
                say(f"replica ack {acks}: wrk against POST /jobs")
                client.flushall()
                port = free_port()
                api = api_server(ack_env, port, tmp / f"{name}-api.log").start()
                try:
                    base = f"http://127.0.0.1:{port}"
                    wait_http(f"{base}/healthz", api)
                    run_wrk(f"{base}/healthz", api, 1, config.http_connections)  # warm-up
                    results[name]["post_jobs"] = run_wrk(
                        f"{base}/jobs",
                        api,
                        config.http_seconds,
                        config.http_connections,
                        HERE / "wrk_post_jobs.lua",
                        (f"{run_id}-{name}",),
                    )
                finally:
                    api.stop()
    finally:
        replica.stop()
        primary.stop()
    return results
