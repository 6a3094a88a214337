"""``POST /jobs`` per second through gunicorn, measured with ``wrk``, beside ``GET /healthz``
in the same server (the ceiling), with the split of the work between gunicorn workers."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench import profiling
from bench.processes import ProcessGroup, cpu_seconds
from jobcore.store import queries
from jobcore.store.executor import Executor

HERE = Path(__file__).parent
#: wrk's own threads (the machine has two cores, shared with the server and Redis).
WRK_THREADS = 2


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str,
    api: ProcessGroup,
    seconds: float,
    connections: int,
    script: Path | None = None,
    args: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One wrk run; requests/s, latency, errors and each gunicorn worker's share of CPU."""
    command = ["wrk", "-t", str(WRK_THREADS), "-c", str(connections), "-d", f"{seconds:g}s"]
    command += ["--latency"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    if args:
        command += ["--", *args]
    workers = api.pids()[1:]
    before = {pid: cpu_seconds(pid) for pid in workers}
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    shares = {pid: cpu_seconds(pid) - before[pid] for pid in workers}
    total = sum(shares.values()) or 1.0
    requests = int(_field(out, r"(\d+) requests in"))
    return {
        "requests_per_s": float(_field(out, r"Requests/sec:\s+([\d.]+)")),
        "latency_p50_ms": _ms(_field(out, r"50%\s+([\d.]+\w+)")),
        "latency_p99_ms": _ms(_field(out, r"99%\s+([\d.]+\w+)")),
        "non_2xx": int(_field(out, r"Non-2xx or 3xx responses:\s+(\d+)", "0")),
        "socket_errors": _field(out, r"Socket errors:\s+(.*)", ""),
        "worker_cpu_share": [round(s / total, 2) for s in shares.values()],
        "cpu_us_per_request": round(total * 1e6 / max(requests, 1)),
        "connections": connections,
        "seconds": seconds,
    }


def completed_count(client: redis.Redis) -> tuple[int, int]:
    """Jobs completed, and jobs in any state, as ``GET /jobs/stats`` counts them."""
    counted = Executor(client).run(queries.stats([], []))
    return counted["states"]["completed"], counted["total"]


def submit_and_drain_http(
    base_url: str,
    api: ProcessGroup,
    start_workers: Callable[[], ProcessGroup],
    client: redis.Redis,
    seconds: float,
    connections: int,
    run_id: str,
) -> dict[str, Any]:
    """wrk posts jobs while workers drain them: jobs completed per second end to end, from
    wrk's start to the last job's completion."""
    client.flushall()
    workers = start_workers()
    try:
        time.sleep(2)  # the workers' processes up and waiting
        began = time.monotonic()
        posted = run_wrk(
            f"{base_url}/jobs",
            api,
            seconds,
            connections,
            HERE / "wrk_post_jobs.lua",
            (f"{run_id}-drain",),
        )
        deadline = time.monotonic() + 120
        done, total = completed_count(client)
        while done < total and time.monotonic() < deadline:
            time.sleep(0.05)
            done, total = completed_count(client)
        took = time.monotonic() - began
    finally:
        workers.stop()
    return {
        "posted_per_s": posted["requests_per_s"],
        "jobs": total,
        "completed": done,
        "seconds": round(took, 3),
        "jobs_per_s": round(done / took, 1) if took else 0.0,
    }


def http_bench(
    base_url: str,
    api: ProcessGroup,
    seconds: float,
    connections: int,
    run_id: str,
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    # A short warm-up: every gunicorn worker imports lazily on its first requests.
    run_wrk(f"{base_url}/healthz", api, 1, connections)
    healthz = run_wrk(f"{base_url}/healthz", api, seconds, connections)
    time.sleep(0.5)
    profilers = profiling.start(profile_dir, api.pids()[1:], "api-post-jobs")
    post = run_wrk(
        f"{base_url}/jobs", api, seconds, connections, HERE / "wrk_post_jobs.lua", (run_id,)
    )
    profiling.stop(profilers)
    return {"healthz": healthz, "post_jobs": post}


def _field(text: str, pattern: str, default: str | None = None) -> str:
    match = re.search(pattern, text)
    if match:
        return match.group(1).strip()
    if default is not None:
        return default
    raise RuntimeError(f"wrk printed no {pattern!r}:\n{text}")


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
