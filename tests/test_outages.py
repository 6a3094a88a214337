"""Redis outages and backpressure: 503 with Retry-After within a second, recovery by itself.

These tests stop, pause and fill a Redis of their own (never the session's), with a real
gunicorn API and, for the reconnect test, a real worker process in front of it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from conftest import WorkerProcess, service_env, wait_until
from live_api import LiveApi

from jobcore.jobs import new_job_id
from jobcore_devstack.redis_server import RedisServer

#: The bound the issue sets on answering while Redis is unusable, in seconds.
WITHIN_A_SECOND = 1.0
#: Deepest a queue may get before submissions to it are refused; above what the other
#: tests here leave in the default queue (no worker consumes it until the last test).
QUEUE_DEPTH_LIMIT = 20


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, smtp_sink) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("outages")
    server = RedisServer(tmp / "redis").start()
    env = service_env(
        server.url,
        smtp_sink.url,
        tmp,
        JOBCORE_MAX_QUEUE_DEPTH=str(QUEUE_DEPTH_LIMIT),
        JOBCORE_QUEUE_DEPTH_CACHE="0s",
    )
    api = LiveApi(env, tmp / "gunicorn.log").start()
    yield {"redis": server, "api": api, "env": env, "tmp": tmp}
    api.stop()
    server.stop()


def client(stack: dict) -> redis.Redis:
    return redis.Redis(port=stack["redis"].port, socket_timeout=2, decode_responses=True)


def post_job(stack: dict, body: dict, **headers: str) -> tuple[requests.Response, float]:
    started = time.monotonic()
    result = requests.post(stack["api"].url + "/jobs", json=body, headers=headers, timeout=10)
    return result, time.monotonic() - started


def assert_unavailable(result: requests.Response, elapsed: float) -> None:
    assert result.status_code == 503, result.text
    assert result.headers["Content-Type"] == "application/problem+json"
    assert int(result.headers["Retry-After"]) >= 1
    assert elapsed < WITHIN_A_SECOND, f"answered after {elapsed:.2f} s"


def ready(stack: dict) -> int:
    return requests.get(stack["api"].url + "/readyz", timeout=5).status_code


def dummy(**extra: object) -> dict:
    return {"type": "dummy", "payload": {}, **extra}


def test_with_redis_stopped_submit_is_a_503_within_a_second_and_recovers_by_itself(stack):
    assert post_job(stack, dummy())[0].status_code == 202
    stack["redis"].stop()
    try:
        assert_unavailable(*post_job(stack, dummy()))
        assert ready(stack) == 503
        job = requests.get(stack["api"].url + f"/jobs/{new_job_id()}", timeout=5)
        assert job.status_code == 503 and "Retry-After" in job.headers
    finally:
        stack["redis"].start()
    assert ready(stack) == 200
    result, _ = post_job(stack, dummy())
    assert result.status_code == 202, "the API must reconnect without a restart"


def test_with_redis_hung_submit_is_a_503_within_a_second(stack):
    pid = stack["redis"].process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        assert_unavailable(*post_job(stack, dummy()))
        assert ready(stack) == 503
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: ready(stack) == 200, timeout=10, message="readiness after SIGCONT")
    assert post_job(stack, dummy())[0].status_code == 202


@pytest.mark.parametrize("with_key", [True, False], ids=["with a key", "without a key"])
def test_with_redis_out_of_memory_submit_is_a_503_and_writes_nothing(stack, with_key):
    redis_client = client(stack)
    before = redis_client.dbsize()
    redis_client.config_set("maxmemory", 1)
    try:
        body = dummy(idempotencyKey=f"oom-{new_job_id()}") if with_key else dummy()
        assert_unavailable(*post_job(stack, body))
        assert redis_client.dbsize() == before, "a refused submission must leave nothing"
    finally:
        redis_client.config_set("maxmemory", 0)
    result, _ = post_job(stack, body)
    assert result.status_code == 202, f"the refused request must make no job: {result.text}"
    assert "duplicate" not in result.json()


def test_a_queue_deeper_than_the_limit_refuses_new_jobs_for_it_only(stack):
    redis_client = client(stack)
    report = {"type": "report", "payload": {"durationSeconds": 0}}
    while redis_client.llen("dramatiq:reports") < QUEUE_DEPTH_LIMIT:
        assert post_job(stack, report)[0].status_code == 202
    result, elapsed = post_job(stack, report)
    assert_unavailable(result, elapsed)
    assert result.json()["queue"] == "reports"
    other, _ = post_job(stack, dummy())
    assert other.status_code == 202, f"other queues still take work: {other.text}"
    redis_client.delete("dramatiq:reports")
    assert post_job(stack, report)[0].status_code == 202


def test_the_worker_reconnects_after_redis_returns_without_a_restart(stack):
    log = Path(stack["tmp"]) / "worker.log"
    worker = WorkerProcess(
        stack["env"], log, "--processes", "1", "--threads", "2", "--queues", "default"
    )
    worker.start()
    try:
        assert_completes(stack, post_job(stack, dummy(payload={"echo": "before"}))[0])
        stack["redis"].stop()
        time.sleep(2)  # long enough for the worker's fetches and heartbeats to fail
        stack["redis"].start()
        result = wait_until(
            lambda: (
                (r := post_job(stack, dummy(payload={"echo": "after"}))[0]).status_code == 202 and r
            ),
            timeout=10,
            message="the API to accept work again",
        )
        assert_completes(stack, result)
        assert worker.process is not None and worker.process.poll() is None
    finally:
        worker.stop()


def assert_completes(stack: dict, accepted: requests.Response, timeout: float = 30) -> None:
    assert accepted.status_code == 202, accepted.text
    url = stack["api"].url + accepted.headers["Location"] + "/status"

    def completed() -> bool:
        try:
            return requests.get(url, timeout=5).json().get("state") == "completed"
        except (requests.RequestException, ValueError):
            return False

    wait_until(completed, timeout=timeout, interval=0.2, message=f"{url} to be completed")


def test_a_submission_redis_did_not_answer_names_the_job_that_may_exist(tmp_path, smtp_sink):
    """A create script sent to a Redis that then hangs may run once it resumes: the 503 says
    so and names the job, and a retry with the same key gets that job, not a second one."""
    server = RedisServer(tmp_path / "redis").start()
    env = service_env(server.url, smtp_sink.url, tmp_path, JOBCORE_MAX_QUEUE_DEPTH="0")
    api = LiveApi(env, tmp_path / "gunicorn.log").start()
    stack = {"api": api}
    try:
        for _ in range(4):  # every API worker holds a live connection
            assert post_job(stack, dummy())[0].status_code == 202
        body = dummy(payload={"echo": "hung"}, idempotencyKey=f"hung-{new_job_id()}")
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            refused, elapsed = post_job(stack, body)
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert_unavailable(refused, elapsed)
        problem = refused.json()
        assert problem["mayExist"] is True and problem["jobId"], problem
        assert "same idempotency key" in problem["detail"]
        # The script was in Redis's socket when it paused: it ran once Redis resumed.
        wait_until(lambda: ready(stack) == 200, timeout=10, message="readiness after SIGCONT")
        written = requests.get(f"{api.url}/jobs/{problem['jobId']}", timeout=5)
        assert written.status_code == 200 and written.json()["payload"] == {"echo": "hung"}
        retried, _ = post_job(stack, body)
        assert retried.status_code == 200, retried.text
        assert retried.json()["jobId"] == problem["jobId"] and retried.json()["duplicate"]
    finally:
        api.stop()
        server.stop()


def test_after_a_failed_readiness_probe_the_metrics_show_redis_up_again(stack):
    pid = stack["redis"].process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        assert ready(stack) == 503
    finally:
        os.kill(pid, signal.SIGCONT)

    def store_up_series() -> list[str]:
        text = requests.get(stack["api"].url + "/metrics", timeout=5).text
        return [line for line in text.splitlines() if line.startswith("jobcore_store_up{")]

    # The scrape itself reaches Redis: it says so, whichever API worker answers it.
    wait_until(
        lambda: store_up_series() == ['jobcore_store_up{kind="api"} 1.0'],
        timeout=10,
        message=f"jobcore_store_up back to 1 with no other series: {store_up_series()}",
    )
