"""Drain, submit-and-drain, Redis cost and latency of one system (Jobcore or bare Dramatiq).

Both systems run the same steps against the same ``redis-server``: warm the workers, drain
a pre-filled queue, submit while draining, then submit at a fixed rate and time each job.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import redis

from bench import profiling, roundtrips
from bench.bare_broker import LATENCY_KEY
from bench.processes import ProcessGroup
from bench.producers import PARKED_NAMESPACE, message_hash, ready_list, release_parked
from jobcore.store import keys

#: Seconds between two looks at the queue while waiting for it to drain.
POLL_INTERVAL = 0.005
#: Commands the bench itself sends while measuring, left out of the workers' command counts.
BENCH_COMMANDS = frozenset({"info", "llen", "hlen", "rename", "multi", "exec", "zcard"})


class Producer(Protocol):
    name: str

    def submit(self, *, parked: bool = False, probe: bool = False) -> str: ...


@dataclass
class QueueBench:
    """What one system's steps share: its producer, its workers and where to count."""

    producer: Producer
    workers: ProcessGroup
    client: redis.Redis
    roundtrip_dir: Path
    processes: int
    profile_dir: Path | None = None
    #: Producer processes filling the queue before a drain.
    fill_processes: int = 1
    #: Idempotency keys of this run start with it.
    run_id: str = "bench"
    results: dict[str, Any] = field(default_factory=dict)
    #: A job of the latest step (Jobcore: a finished record to copy at scale).
    last_job_id: str = ""

    @property
    def label(self) -> str:
        return self.producer.name.replace(" ", "-")

    # --- helpers -------------------------------------------------------------------

    def wait_drained(self, timeout: float, expected: int | None = None) -> tuple[float, float]:
        """Wait until every message is acked; (first take, done) as ``perf_counter`` times.

        The first take is when the ready list first holds fewer than ``expected`` messages.
        """
        deadline = time.monotonic() + timeout
        first = None if expected is not None else time.perf_counter()
        while True:
            pipe = self.client.pipeline(transaction=False)
            pipe.llen(ready_list())
            pipe.hlen(message_hash())
            ready, unacked = pipe.execute()
            now = time.perf_counter()
            if first is None and expected is not None and ready < expected:
                first = now
            if ready == 0 and unacked == 0:
                return (first if first is not None else now), now
            if time.monotonic() > deadline:
                self.workers.check_alive()
                raise RuntimeError(f"{self.producer.name}: {unacked} messages left after drain")
            time.sleep(POLL_INTERVAL)

    def wait_workers(self, timeout: float = 60.0) -> None:
        """Until every worker process has polled the broker (its heartbeat is in Redis)."""
        deadline = time.monotonic() + timeout
        while self.client.zcard("dramatiq:__heartbeats__") < self.processes:
            self.workers.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.producer.name}: workers did not start in {timeout} s")
            time.sleep(0.1)

    def redis_counters(self) -> dict[str, float]:
        stats = self.client.info("commandstats")
        counters = {
            name.removeprefix("cmdstat_"): float(v["calls"])
            for name, v in stats.items()
            if name.removeprefix("cmdstat_") not in BENCH_COMMANDS
        }
        cpu = self.client.info("cpu")
        counters["_redis_cpu"] = float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])
        return counters

    def _fill(self, jobs: int) -> tuple[float, float, int]:
        """``fill_processes`` processes send ``jobs`` parked messages.

        Returns the wall seconds of the slowest, the CPU seconds of all, and round trips.
        """
        trips = self.roundtrip_dir.parent / f"{self.roundtrip_dir.name}-fill"
        trips.mkdir(exist_ok=True)
        env = self.workers.env | {roundtrips.DIRECTORY_ENV: str(trips)}
        share, extra = divmod(jobs, self.fill_processes)
        system = "jobcore" if self.producer.name == "jobcore" else "bare"
        fills = []
        for i in range(self.fill_processes):
            count = share + (1 if i < extra else 0)
            command = [sys.executable, "-m", "bench.fill", system, str(count), f"{self.run_id}-{i}"]
            fills.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE))
        profilers = profiling.start(
            self.profile_dir, [fill.pid for fill in fills], f"{self.label}-producer"
        )
        seconds, cpu = [], 0.0
        for fill in fills:
            out, _ = fill.communicate(timeout=900)
            if fill.returncode != 0:
                raise RuntimeError(f"{self.producer.name}: a fill process failed")
            report = json.loads(out.decode().strip().splitlines()[-1])
            seconds.append(report["seconds"])
            cpu += report["cpu_seconds"]
        profiling.stop(profilers)
        return max(seconds), cpu, roundtrips.total_in(trips)

    # --- steps -----------------------------------------------------------------------

    def warm_up(self, jobs: int) -> None:
        self.wait_workers()
        for _ in range(jobs):
            self.producer.submit()
        self.wait_drained(timeout=120)

    def drain(self, jobs: int) -> None:
        """Fill ``jobs`` parked messages, release them to warm workers, time the drain."""
        fill_counters = self.redis_counters()
        fill_seconds, fill_cpu, producer_trips = self._fill(jobs)
        producer_commands = _delta(fill_counters, self.redis_counters())
        producer_commands.pop("_redis_cpu")
        if self.client.llen(ready_list(PARKED_NAMESPACE)) != jobs:
            raise RuntimeError("the parked queue does not hold every pre-filled message")

        time.sleep(3 * roundtrips.WRITE_INTERVAL)
        before_trips = roundtrips.total_in(self.roundtrip_dir)
        before_cpu = self.workers.cpu()
        before = self.redis_counters()
        profilers = profiling.start(
            self.profile_dir, self.workers.pids()[1:], f"{self.label}-worker"
        )
        release_parked(self.client)
        first, done = self.wait_drained(timeout=600, expected=jobs)
        profiling.stop(profilers)
        after = self.redis_counters()
        after_cpu = self.workers.cpu()
        time.sleep(3 * roundtrips.WRITE_INTERVAL)
        worker_trips = roundtrips.total_in(self.roundtrip_dir) - before_trips
        worker_commands = _delta(before, after)
        redis_cpu = worker_commands.pop("_redis_cpu")
        cpu = sum(after_cpu.get(pid, 0.0) - before_cpu.get(pid, 0.0) for pid in after_cpu)

        self.results["drain"] = {
            "jobs": jobs,
            "seconds": done - first,
            "jobs_per_s": jobs / (done - first),
            "worker_cpu_us_per_job": cpu / jobs * 1e6,
            "redis_cpu_us_per_job": redis_cpu / jobs * 1e6,
        }
        self.results["producer"] = {
            "processes": self.fill_processes,
            "jobs_per_s": jobs / fill_seconds,
            "cpu_us_per_job": fill_cpu / jobs * 1e6,
        }
        self.results["redis_cost"] = {
            "producer_round_trips_per_job": producer_trips / jobs,
            "worker_round_trips_per_job": worker_trips / jobs,
            "round_trips_per_job": (producer_trips + worker_trips) / jobs,
            "producer_commands_per_job": sum(producer_commands.values()) / jobs,
            "worker_commands_per_job": sum(worker_commands.values()) / jobs,
            "commands_per_job": (sum(producer_commands.values()) + sum(worker_commands.values()))
            / jobs,
            "producer_commands": _per_job(producer_commands, jobs),
            "worker_commands": _per_job(worker_commands, jobs),
        }

    def submit_and_drain(self, jobs: int) -> None:
        started = time.perf_counter()
        for _ in range(jobs):
            self.producer.submit()
        submitted = time.perf_counter()
        _, done = self.wait_drained(timeout=600)
        self.results["submit_and_drain"] = {
            "jobs": jobs,
            "seconds": done - started,
            "jobs_per_s": jobs / (done - started),
            "submit_jobs_per_s": jobs / (submitted - started),
        }

    def latency(self, rate: float, seconds: float, timings: Callable[[list[str]], Any]) -> None:
        """Submit at ``rate`` jobs/s for ``seconds``; ``timings`` reads each job's times."""
        count = int(rate * seconds)
        ids = []
        started = time.perf_counter()
        for i in range(count):
            pause = started + i / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            ids.append(self.producer.submit(probe=True))
        achieved = count / (time.perf_counter() - started)
        self.wait_drained(timeout=120)
        self.last_job_id = ids[-1]
        to_start, to_finish = timings(ids)
        self.results["latency"] = {
            "jobs": count,
            "rate": rate,
            "achieved_rate": achieved,
            "submit_to_start_ms": _percentiles(to_start),
            "submit_to_finish_ms": _percentiles(to_finish) if to_finish else None,
        }


def jobcore_timings(client: redis.Redis) -> Callable[[list[str]], tuple[list[int], list[int]]]:
    """Submit-to-start and submit-to-finish of Jobcore jobs, from their records."""

    def read(ids: list[str]) -> tuple[list[int], list[int]]:
        pipe = client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(keys.job(job_id), "createdAt", "processedAt", "finishedAt")
        to_start, to_finish = [], []
        for created, processed, finished in pipe.execute():
            to_start.append(int(processed) - int(created))
            to_finish.append(int(finished) - int(created))
        return to_start, to_finish

    return read


def bare_timings(client: redis.Redis) -> Callable[[list[str]], tuple[list[int], list[int]]]:
    """Submit-to-start of bare probes, which push their times (no record: no finish time)."""

    def read(ids: list[str]) -> tuple[list[int], list[int]]:
        to_start = []
        for line in client.lrange(LATENCY_KEY, 0, -1):
            sent, began = (int(x) for x in line.split())
            to_start.append(began - sent)
        return to_start, []

    return read


def _delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    found = {name: value - before.get(name, 0.0) for name, value in after.items()}
    return {name: value for name, value in found.items() if value}


def _per_job(commands: dict[str, float], jobs: int) -> dict[str, float]:
    ranked = sorted(commands.items(), key=lambda item: -item[1])
    return {name: round(value / jobs, 3) for name, value in ranked}


def _percentiles(values: list[int]) -> dict[str, float]:
    ordered = sorted(values)

    def at(fraction: float) -> float:
        return float(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))])

    return {"p50": at(0.50), "p99": at(0.99), "max": float(ordered[-1]), "n": len(ordered)}
