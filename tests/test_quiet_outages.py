"""An outage is loud once, then quiet: a 20 s Redis outage under a real worker (2 processes),
scheduler and API writes a handful of log lines, not one per try (``jobcore.outages``).

Measured before this bound existed (``make run`` at f6f0589): a 3.5-minute outage made the
two worker processes write 7,954 ``presence loop error`` lines.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from conftest import BIN, WorkerProcess, service_env, wait_until
from live_api import LiveApi
from prometheus_client.parser import text_string_to_metric_families

from jobcore_devstack.redis_server import RedisServer, free_port

pytestmark = pytest.mark.faults

#: How long Redis stays down.
OUTAGE_SECONDS = 20.0
#: Most lines each service may write meanwhile, everything counted: a start and an end line
#: per loop that waits (worker: presence, consumers, transitions, in each of 2 processes;
#: scheduler: heartbeat, ticks) and the work it does (4 jobs started and finished, a tick
#: fired or given up), with room for the jobs a slow machine recovers or retries after the
#: outage. A line per try would be hundreds (one per 50 ms per process before the backoff).
MOST_LINES = {"worker": 40, "scheduler": 10, "api": 4}


def lines_after(path: Path, offset: int) -> list[str]:
    with path.open("rb") as log:
        log.seek(offset)
        return [line for line in log.read().decode(errors="replace").splitlines() if line]


def store_up(metrics_url: str) -> float | None:
    try:
        text = requests.get(metrics_url, timeout=2).text
    except requests.RequestException:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "jobcore_store_up" and sample.labels.get("kind") == "worker":
                return sample.value
    return None


def test_a_20_s_outage_writes_a_few_lines_not_one_per_try(tmp_path: Path, smtp_sink):
    server = RedisServer(tmp_path / "redis").start()
    metrics_port = free_port()
    env = service_env(
        server.url, smtp_sink.url, tmp_path, JOBCORE_WORKER_METRICS_PORT=str(metrics_port)
    )
    logs = {name: tmp_path / f"{name}.log" for name in ("worker", "scheduler", "api")}
    worker = WorkerProcess(env, logs["worker"], "--processes", "2", "--threads", "2")
    api = LiveApi(env, logs["api"])
    scheduler = None
    try:
        worker.start()
        api.start()
        scheduler = subprocess.Popen(
            [str(BIN / "jobcore-scheduler")],
            env=env,
            stdout=logs["scheduler"].open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(
            lambda: "Scheduling Actor" in logs["scheduler"].read_text(errors="replace"),
            timeout=30,
            message="the scheduler to start",
        )
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        wait_until(lambda: store_up(metrics_url) == 1, timeout=30, message="store up")
        for _ in range(4):  # jobs in flight when Redis goes: their ends wait it out
            requests.post(
                api.url + "/jobs", json={"type": "dummy", "payload": {"sleepSeconds": 2}}, timeout=5
            )
        time.sleep(0.5)
        offsets = {name: path.stat().st_size for name, path in logs.items()}

        server.kill()
        began = time.monotonic()
        wait_until(lambda: store_up(metrics_url) == 0, timeout=15, message="store down")
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - began)))
        server.start()
        wait_until(lambda: store_up(metrics_url) == 1, timeout=30, message="store up again")
        time.sleep(3)  # every loop's next try, and its "available again" line

        written = {name: lines_after(path, offsets[name]) for name, path in logs.items()}
        events = {name: Counter(_event(line) for line in lines) for name, lines in written.items()}
        print(
            f"\nlines written during a {OUTAGE_SECONDS:g} s outage: "
            + ", ".join(f"{name}={len(lines)}" for name, lines in written.items())
        )
        for name, counted in events.items():
            print(f"  {name}: {dict(counted)}")
        for name, most in MOST_LINES.items():
            assert len(written[name]) <= most, "\n".join(written[name])
        assert events["worker"]["store unavailable"] >= 1
        assert events["worker"]["store available again"] >= 1
        assert "presence loop error" not in events["worker"]
    finally:
        if scheduler is not None:
            scheduler.terminate()
            scheduler.wait(timeout=20)
        worker.stop()
        api.stop()
        server.stop()


def _event(line: str) -> str:
    try:
        return str(json.loads(line).get("event", "?"))
    except ValueError:
        return line[:60]
