"""What faster crash redelivery costs Redis: idle workers with Dramatiq's defaults vs Jobcore's.

Starts its own redis-server, runs one idle ``jobcore-worker`` (2 processes x 8 threads)
for each setting, and prints Redis commands per second and Redis CPU seconds per minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from jobcore_devstack.redis_server import RedisServer

#: Seconds each setting is measured for, after a warm-up.
MEASURE_SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
SETTINGS = {
    "dramatiq defaults (heartbeat 60 s, maintenance 0.1%)": {
        "JOBCORE_BROKER_HEARTBEAT_TIMEOUT": "60s",
        "JOBCORE_BROKER_MAINTENANCE_CHANCE": "1000",
    },
    "jobcore defaults (heartbeat 10 s, maintenance 10%)": {},
}


def totals(client: redis.Redis) -> tuple[int, float]:
    stats = client.info("commandstats")
    calls = sum(int(v["calls"]) for v in stats.values())
    cpu = client.info("cpu")
    return calls, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


def measure(name: str, overrides: dict[str, str]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp)).start()
        env = dict(os.environ, REDIS_URL=server.url, **overrides)
        worker = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "jobcore-worker"),
                "--processes",
                "2",
                "--threads",
                "8",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis.from_url(server.url)
            time.sleep(5)
            calls0, cpu0 = totals(client)
            time.sleep(MEASURE_SECONDS)
            calls1, cpu1 = totals(client)
        finally:
            worker.terminate()
            worker.wait()
            server.stop()
    return (calls1 - calls0) / MEASURE_SECONDS, (cpu1 - cpu0) * 60 / MEASURE_SECONDS


def main() -> None:
    print(f"{'setting':<58} {'commands/s':>11} {'redis cpu s/min':>16}")
    for name, overrides in SETTINGS.items():
        rate, cpu = measure(name, overrides)
        print(f"{name:<58} {rate:>11.0f} {cpu:>16.2f}")


if __name__ == "__main__":
    main()
