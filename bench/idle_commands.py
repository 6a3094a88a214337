"""What idle workers cost Redis: ``INFO commandstats`` calls (and Redis CPU) over a quiet
window in which no job is sent, per second."""

from __future__ import annotations

import time
from typing import Any

import redis

from bench.processes import ProcessGroup

#: Commands the bench itself sends during the window (its two ``INFO`` reads).
BENCH_COMMANDS = frozenset({"info"})


def command_calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command since Redis started (commands run by Lua scripts included)."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def redis_cpu(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


def idle_commands(client: redis.Redis, workers: ProcessGroup, seconds: float) -> dict[str, Any]:
    """Commands per second reaching Redis while ``workers`` run and no job is sent."""
    workers.check_alive()
    cpu_before = redis_cpu(client)
    before = command_calls(client)
    started = time.perf_counter()
    time.sleep(seconds)
    after = command_calls(client)
    elapsed = time.perf_counter() - started
    cpu_after = redis_cpu(client)
    workers.check_alive()
    delta = {
        name: calls - before.get(name, 0)
        for name, calls in after.items()
        if name not in BENCH_COMMANDS and calls != before.get(name, 0)
    }
    total = sum(delta.values())
    ranked = sorted(delta.items(), key=lambda item: -item[1])
    return {
        "seconds": elapsed,
        "commands": total,
        "commands_per_s": total / elapsed,
        "redis_cpu_s_per_min": (cpu_after - cpu_before) * 60 / elapsed,
        "by_command_per_s": {name: round(calls / elapsed, 2) for name, calls in ranked},
    }
