"""Prometheus metrics of the real API (2 gunicorn workers) and worker (2 Dramatiq processes)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import wait_until
from observed_stack import Stack
from prometheus_client.parser import text_string_to_metric_families

from jobcore_devstack.redis_server import free_port


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, smtp_sink: Any) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("metrics"), smtp_sink.url).start()
    yield running
    running.stop()


def samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    reply = requests.get(url, timeout=5)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def ran(stack: Stack) -> Stack:
    """Two successes, one success after a retry, one dead letter (two failed attempts)."""
    fast = {"type": "fixed", "delayMs": 100}
    ids = [
        stack.submit({"type": "dummy", "payload": {}}),
        stack.submit({"type": "dummy", "payload": {}}),
        stack.submit({"type": "dummy", "payload": {"failTimes": 1}, "backoff": fast}),
        stack.submit(
            {"type": "dummy", "payload": {"alwaysFail": True}, "maxAttempts": 2, "backoff": fast}
        ),
    ]
    for job_id in ids[:3]:
        stack.wait_for(job_id, "completed")
    stack.wait_for(ids[3], "failed")
    return stack


def test_worker_port_counts_attempts_of_every_process_by_type_and_outcome(ran):
    def counted() -> dict[Any, float] | None:
        found = samples(ran.worker_metrics_url)
        return found if value(found, "jobcore_jobs_started_total", type="dummy") >= 6 else None

    found = wait_until(counted, message="six attempts counted")
    assert value(found, "jobcore_jobs_started_total", type="dummy") == 6
    assert value(found, "jobcore_jobs_succeeded_total", type="dummy") == 3
    assert value(found, "jobcore_jobs_failed_total", type="dummy") == 3
    assert value(found, "jobcore_jobs_retried_total", type="dummy") == 2
    assert value(found, "jobcore_jobs_dead_lettered_total", type="dummy") == 1
    assert (
        value(found, "jobcore_job_duration_seconds_count", type="dummy", outcome="succeeded") == 3
    )
    assert value(found, "jobcore_job_duration_seconds_count", type="dummy", outcome="failed") == 3
    # Every type has its series from the start, at zero.
    assert ("jobcore_jobs_started_total", frozenset({("type", "report")})) in found
    assert value(found, "jobcore_store_up", kind="worker") == 1


def _listening_addresses(port: int) -> set[str]:
    """The local addresses a socket listens on at ``port`` (``/proc/net/tcp``, IPv4)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # LISTEN
            found.add(str(ipaddress.IPv4Address(bytes(reversed(bytes.fromhex(address))))))
    return found


def test_worker_port_listens_on_loopback_by_default(ran):
    wait_until(lambda: samples(ran.worker_metrics_url), message="the worker's metrics port")
    assert _listening_addresses(ran.worker_metrics_port) == {"127.0.0.1"}


def test_api_counts_requests_of_every_gunicorn_worker_by_route_and_status(ran):
    for _ in range(10):
        assert requests.get(ran.api.url + "/jobs/no-such-job", timeout=5).status_code == 404

    def counted() -> dict[Any, float] | None:
        # Each API process writes its request counts within a second (``metric_tally``).
        found = samples(ran.api.url + "/metrics")
        missing = value(
            found, "jobcore_api_requests_total", route="/jobs/{job_id}", method="GET", status="404"
        )
        return found if missing >= 10 else None

    found = wait_until(counted, message="ten 404s counted")
    assert (
        value(found, "jobcore_api_requests_total", route="/jobs", method="POST", status="202") == 4
    )
    assert (
        value(
            found, "jobcore_api_requests_total", route="/jobs/{job_id}", method="GET", status="404"
        )
        == 10
    )
    assert (
        value(found, "jobcore_api_request_duration_seconds_count", route="/jobs", method="POST")
        == 4
    )
    assert value(found, "jobcore_jobs_submitted_total", type="dummy") == 4


def test_api_reads_queue_dead_letter_and_worker_gauges_from_redis_at_scrape_time(ran):
    found = samples(ran.api.url + "/metrics")
    assert value(found, "jobcore_store_up", kind="api") == 1
    assert value(found, "jobcore_dead_letters") == 1
    assert value(found, "jobcore_jobs", state="completed") == 3
    assert value(found, "jobcore_jobs", state="failed") == 1
    assert value(found, "jobcore_jobs_delayed") == 0
    assert ("jobcore_queue_depth", frozenset({("queue", "default")})) in found
    # Both worker processes heartbeat, though jobs may have finished before the second began.
    wait_until(
        lambda: (
            value(samples(ran.api.url + "/metrics"), "jobcore_processes_live", kind="worker") == 2
        ),
        message="two live worker processes",
    )
    assert ("jobcore_jobs_in_flight", frozenset()) in found
    delayed = ran.submit({"type": "dummy", "payload": {}, "delaySeconds": 3600})
    assert delayed
    assert value(samples(ran.api.url + "/metrics"), "jobcore_jobs_delayed") == 1


@pytest.mark.parametrize("host", ["no-such-host.invalid", "192.0.2.1"])
def test_a_metrics_host_that_cannot_be_bound_is_said_once_and_not_retried(host):
    from structlog.testing import capture_logs

    from jobcore.execution.worker_metrics import JobMetrics

    served = JobMetrics(["dummy"], free_port(), host)
    with capture_logs() as lines:
        served._serve()  # returns instead of retrying every few seconds
    said = [line for line in lines if line["event"] == "worker metrics cannot listen"]
    assert len(said) == 1 and said[0]["host"] == host
    assert "JOBCORE_WORKER_METRICS_HOST" in said[0]["fix"]
