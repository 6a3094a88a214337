"""What a bench run measures and how big: every knob is an environment variable."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


#: Every part, the default of ``BENCH_PARTS``.
PARTS = "queues,http,scale,ack,recovery"


@dataclass(frozen=True)
class BenchConfig:
    #: Pre-filled no-op jobs drained by warm workers (``BENCH_JOBS``).
    jobs: int
    #: Jobs submitted while the workers drain (``BENCH_SUBMIT_JOBS``, default a quarter).
    submit_jobs: int
    #: Producer processes of the pre-fill (``BENCH_FILL_PROCESSES``).
    fill_processes: int
    #: Jobs run before measuring, once every worker process polls (``BENCH_WARMUP``).
    warmup: int
    processes: int
    threads: int
    latency_rate: float
    latency_seconds: float
    http_seconds: float
    http_connections: int
    #: Start gunicorn with SO_REUSEPORT (``BENCH_HTTP_REUSE_PORT``, default on as shipped).
    reuse_port: bool
    #: Stored records at which reads are timed (``BENCH_SCALE``, comma-separated).
    scale: tuple[int, ...]
    #: Export spans to the in-process OTLP sink (``BENCH_TRACING``, default on).
    tracing: bool
    #: ``JOBCORE_LOG_LEVEL`` of every Jobcore process (``BENCH_LOG_LEVEL``, default INFO).
    log_level: str
    #: Sample the Jobcore workers with py-spy during the drain (``BENCH_PROFILE``).
    profile: bool
    #: Parts to run (``BENCH_PARTS``: any of queues, http, scale, ack, recovery).
    parts: frozenset[str]
    #: Pre-filled jobs drained with each replica acknowledgement setting (``BENCH_ACK_JOBS``).
    ack_jobs: int = 5000
    #: Whole runs of the queue and HTTP parts; the table shows each figure's median
    #: (``BENCH_RUNS``, default 3). Reads at scale run once, in the last run.
    runs: int = 3
    #: Jobs of the idle submit→start timing, one every ``idle_interval`` seconds
    #: (``BENCH_IDLE_JOBS``, ``BENCH_IDLE_INTERVAL``).
    idle_jobs: int = 10
    idle_interval: float = 2.0
    #: Seconds idle workers' Redis commands are counted for (``BENCH_IDLE_SECONDS``).
    idle_seconds: float = 10.0
    #: How long the job of a crash-recovery timing sleeps (``BENCH_RECOVERY_SLEEP``) and how
    #: long its second start is awaited before "not recovered" (``BENCH_RECOVERY_TIMEOUT``).
    recovery_sleep: float = 30.0
    recovery_timeout: float = 90.0

    @classmethod
    def from_env(cls) -> BenchConfig:
        jobs = _int("BENCH_JOBS", 20_000)
        return cls(
            jobs=jobs,
            submit_jobs=_int("BENCH_SUBMIT_JOBS", max(jobs // 4, 1)),
            fill_processes=_int("BENCH_FILL_PROCESSES", 2),
            warmup=_int("BENCH_WARMUP", 500),
            processes=_int("BENCH_PROCESSES", 2),
            threads=_int("BENCH_THREADS", 8),
            latency_rate=_float("BENCH_LATENCY_RATE", 200),
            latency_seconds=_float("BENCH_LATENCY_SECONDS", 10),
            http_seconds=_float("BENCH_HTTP_SECONDS", 8),
            http_connections=_int("BENCH_HTTP_CONNECTIONS", 32),
            reuse_port=os.environ.get("BENCH_HTTP_REUSE_PORT", "1") not in ("0", "false", ""),
            scale=tuple(
                int(float(x)) for x in os.environ.get("BENCH_SCALE", "1e4,1e6").split(",") if x
            ),
            tracing=os.environ.get("BENCH_TRACING", "1") not in ("0", "false", "no", "off"),
            log_level=os.environ.get("BENCH_LOG_LEVEL", "INFO"),
            profile=os.environ.get("BENCH_PROFILE", "0") not in ("0", "false", "no", "off", ""),
            parts=frozenset(p.strip() for p in os.environ.get("BENCH_PARTS", PARTS).split(",")),
            ack_jobs=_int("BENCH_ACK_JOBS", 5000),
            runs=max(_int("BENCH_RUNS", 3), 1),
            idle_jobs=max(_int("BENCH_IDLE_JOBS", 10), 1),
            idle_interval=_float("BENCH_IDLE_INTERVAL", 2.0),
            idle_seconds=_float("BENCH_IDLE_SECONDS", 10.0),
            recovery_sleep=_float("BENCH_RECOVERY_SLEEP", 30.0),
            recovery_timeout=_float("BENCH_RECOVERY_TIMEOUT", 90.0),
        )
