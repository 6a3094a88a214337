"""One bench run: its own ``redis-server`` and OTLP sink, bare Dramatiq then Jobcore on the
same queue steps, then HTTP and reads at scale, replica acknowledgement, and idle workers and
crash recovery; a table on stdout and a JSON file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis

from bench import experiments, roundtrips
from bench.config import BenchConfig
from bench.http_phase import http_bench, submit_and_drain_http, wrk_available
from bench.otlp_sink import OtlpSink
from bench.processes import ProcessGroup, api_server, bare_workers, jobcore_workers, wait_http
from bench.producers import BareProducer, JobcoreProducer
from bench.queue_phases import QueueBench, bare_timings, jobcore_timings
from bench.recovery import recovery_bench
from bench.replica_ack import replica_ack_bench
from bench.report import print_table
from bench.scale import RecordTemplate, record_memory, scale_bench
from bench.summary import medians
from jobcore.settings import Settings
from jobcore.telemetry.tracing import configure_tracing
from jobcore_devstack.redis_server import (
    RedisServer,
    free_port,
    redis_server_binary,
    redis_server_version,
)

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "dramatiq": version("dramatiq"),
        "redis_py": version("redis"),
        "commit": commit + ("+dirty" if dirty else ""),
    }


def queue_system(
    config: BenchConfig,
    run_id: str,
    producer: Any,
    workers: ProcessGroup,
    client: redis.Redis,
    trips: Path,
    timings: Callable[[list[str]], Any],
    profile_dir: Path | None,
) -> QueueBench:
    bench = QueueBench(
        producer,
        workers,
        client,
        trips,
        config.processes,
        profile_dir,
        fill_processes=config.fill_processes,
        run_id=run_id,
    )
    say(f"{producer.name}: starting {config.processes} x {config.threads} workers")
    workers.start()
    try:
        bench.warm_up(config.warmup)
        say(f"{producer.name}: drain of {config.jobs} pre-filled jobs")
        bench.drain(config.jobs)
        say(f"{producer.name}: submit-and-drain of {config.submit_jobs} jobs")
        bench.submit_and_drain(config.submit_jobs)
        say(f"{producer.name}: latency at {config.latency_rate:g}/s")
        bench.latency(config.latency_rate, config.latency_seconds, timings)
    finally:
        workers.stop()
    return bench


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def one_run(config: BenchConfig, run_id: str, index: int, *, with_scale: bool) -> dict[str, Any]:
    """One pass of the parts asked for, on a fresh Redis and OTLP sink; its results."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="jobcore-bench-") as tmp_name:
        tmp = Path(tmp_name)
        server = RedisServer(tmp / "redis", extra_args=("--appendonly", "no")).start()
        sink = OtlpSink().start()
        groups: list[ProcessGroup] = []
        try:
            # Jobcore's own variables from the caller's shell would change what is measured.
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("OTEL_", "JOBCORE_", "PROMETHEUS_", "BENCH_"))
                or k == experiments.EXPERIMENT_ENV
            }
            env |= {
                "REDIS_URL": server.url,
                "JOBCORE_VAR_DIR": str(tmp / "var"),
                "JOBCORE_WORKER_METRICS_PORT": str(free_port()),
                "PYTHONPATH": os.pathsep.join([str(REPO / "bench" / "hooks"), str(REPO)]),
                "JOBCORE_LOG_LEVEL": config.log_level,
            }
            if config.tracing:
                env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.endpoint
            # The bench process submits like the API: same settings, same tracing.
            os.environ.update({k: v for k, v in env.items() if k != "PYTHONPATH"})
            settings = Settings.from_env(env)
            experiments.apply()
            configure_tracing("jobcore-bench")
            roundtrips.install()
            profile_dir = RESULTS / f"profile-{run_id}-{index + 1}" if config.profile else None
            client = redis.Redis.from_url(server.url, decode_responses=True)
            template: RecordTemplate | None = None
            if "queues" in config.parts:
                for name in ("bare", "jobcore"):
                    client.flushall()
                    trips = tmp / f"trips-{name}"
                    trips.mkdir()
                    worker_env = env | {roundtrips.DIRECTORY_ENV: str(trips)}
                    log = tmp / f"{name}-workers.log"
                    if name == "bare":
                        producer: Any = BareProducer(server.url)
                        workers = bare_workers(worker_env, config.processes, config.threads, log)
                        timings = bare_timings(client)
                    else:
                        producer = JobcoreProducer(settings, run_id)
                        workers = jobcore_workers(worker_env, config.processes, config.threads, log)
                        timings = jobcore_timings(client)
                    groups.append(workers)
                    done = queue_system(
                        config, run_id, producer, workers, client, trips, timings, profile_dir
                    )
                    results[name] = done.results
                    if name == "jobcore" and done.last_job_id:
                        window = int(settings.idempotency_window * 1000)
                        template = RecordTemplate.capture(client, done.last_job_id, window)
                        results["jobcore"]["record_memory"] = record_memory(
                            client, done.last_job_id
                        )
                results["otlp_sink"] = {"requests": sink.requests, "bytes": sink.bytes}

            scale = with_scale and "scale" in config.parts and bool(config.scale)
            if "http" in config.parts or scale:
                client.flushall()
                port = free_port()
                api_env = env | {"JOBCORE_API_REUSE_PORT": str(config.reuse_port).lower()}
                api = api_server(api_env, port, tmp / "api.log")
                groups.append(api)
                api.start()
                base = f"http://127.0.0.1:{port}"
                wait_http(f"{base}/healthz", api)
                if "http" in config.parts:
                    if wrk_available():
                        say("http: wrk against GET /healthz and POST /jobs")
                        results["http"] = http_bench(
                            base,
                            api,
                            config.http_seconds,
                            config.http_connections,
                            run_id,
                            profile_dir,
                        )
                        say("http: submit-and-drain, wrk posting while workers drain")
                        results["http"]["submit_and_drain"] = submit_and_drain_http(
                            base,
                            api,
                            lambda: jobcore_workers(
                                env, config.processes, config.threads, tmp / "http-workers.log"
                            ).start(),
                            client,
                            config.http_seconds,
                            config.http_connections,
                            run_id,
                        )
                    else:
                        say("http: skipped, wrk is not installed (apt-get install -y wrk)")
                if scale and template is None:
                    say("scale: skipped, it copies a finished job of the queues part")
                elif scale and template is not None:
                    say(f"scale: reads with {', '.join(str(s) for s in config.scale)} records")
                    results["scale"] = scale_bench(
                        client, template, list(config.scale), "127.0.0.1", port
                    )
            if "ack" in config.parts:
                for group in reversed(groups):
                    group.stop()
                results["replica_ack"] = replica_ack_bench(config, env, tmp, run_id, say)
            if "recovery" in config.parts:
                for group in reversed(groups):
                    group.stop()
                results["recovery"] = recovery_bench(config, env, tmp, run_id, say)
        finally:
            for group in reversed(groups):
                group.stop()
            sink.stop()
            server.stop()
    return results


def main() -> None:
    config = BenchConfig.from_env()
    started = time.monotonic()
    run_id = f"bench-{int(time.time())}"
    results: dict[str, Any] = {"run_id": run_id, "config": config.__dict__ | {}}
    results["config"]["parts"] = sorted(config.parts)
    results["machine"] = machine()
    results["machine"] |= redis_server_identity()
    runs: list[dict[str, Any]] = []
    for index in range(config.runs):
        say(f"run {index + 1} of {config.runs}")
        # Reads at scale fill Redis with a million records: once, in the last run.
        runs.append(one_run(config, run_id, index, with_scale=index == config.runs - 1))
    results["runs"] = runs
    results["median"] = medians(runs)
    if "scale" in runs[-1]:
        results["scale"] = runs[-1]["scale"]
    results["seconds"] = round(time.monotonic() - started, 1)
    results["tracing"] = config.tracing
    results["experiments"] = sorted(experiments.requested())
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{run_id}.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print_table(results)
    print(f"\nJSON: {out.relative_to(REPO)}  ({results['seconds']} s)")


def redis_server_identity() -> dict[str, str]:
    """The ``redis-server`` binary every run starts, and its version."""
    binary = redis_server_binary()
    return {"redis": redis_server_version(binary), "redis_server": binary}


if __name__ == "__main__":
    main()
