"""Seed requests over real HTTP to gunicorn, and jobs that wait for a worker."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import requests
from conftest import WorkerProcess, service_env, wait_until
from test_pipeline import SEED_000

from jobcore_devstack.redis_server import RedisServer

SEED_001 = {
    "type": "welcome-email",
    "idempotencyKey": "welcome-email-anoop-v1",
    "payload": {
        "email": "anoop@example.com",
        "name": "Anoop",
        "message": "Background job system is live!",
    },
}


def test_seed_000_over_http_is_accepted_then_completed(http_api, worker, smtp_sink):
    answer = requests.post(f"{http_api}/jobs", json=SEED_000, timeout=5)
    assert answer.status_code == 202
    assert answer.headers["Content-Type"].startswith("application/json")
    job_id = answer.json()["jobId"]
    assert answer.json() == {"status": "accepted", "jobId": job_id, "state": "waiting"}
    assert answer.headers["Location"].endswith(f"/jobs/{job_id}")

    def completed() -> dict | None:
        status = requests.get(f"{http_api}/jobs/{job_id}/status", timeout=5).json()
        return status if status["state"] == "completed" else None

    status = wait_until(completed, timeout=10)
    assert set(status) == {
        "jobId",
        "type",
        "state",
        "createdAt",
        "processedAt",
        "failedReason",
        "attempts",
    }
    assert status["createdAt"].endswith("Z") and len(status["createdAt"]) == 24
    wait_until(lambda: [m for m in smtp_sink.messages if m.job_id == job_id])


def test_seed_001_replay_over_http_returns_the_same_job(http_api):
    body = dict(SEED_001, idempotencyKey=f"welcome-email-anoop-{time.time_ns()}")
    first = requests.post(f"{http_api}/jobs", json=body, timeout=5)
    again = requests.post(f"{http_api}/jobs", json=body, timeout=5)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["jobId"] == first.json()["jobId"]
    assert again.headers["Idempotent-Replayed"] == "true"


def test_two_idempotency_key_headers_are_a_400_not_a_third_key(http_api):
    key = uuid.uuid4().hex
    address = urlsplit(http_api)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=5)
    body = json.dumps({"type": "dummy", "payload": {}}).encode()
    connection.putrequest("POST", "/jobs")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(len(body)))
    connection.putheader("Idempotency-Key", f"{key}-a")
    connection.putheader("Idempotency-Key", f"{key}-b")
    connection.endheaders(body)
    answer = connection.getresponse()
    assert answer.status == 400, answer.read()
    assert "one Idempotency-Key header" in json.loads(answer.read())["detail"]
    # A key holding a comma still works, quoted or in the body.
    submission = {"type": "dummy", "payload": {}}
    quoted = requests.post(
        f"{http_api}/jobs", json=submission, headers={"Idempotency-Key": f'"{key},c"'}, timeout=5
    )
    in_body = requests.post(
        f"{http_api}/jobs", json={**submission, "idempotencyKey": f"{key},c"}, timeout=5
    )
    assert (quoted.status_code, in_body.status_code) == (202, 200)


def test_unknown_job_id_over_http_is_a_problem_404(http_api):
    answer = requests.get(f"{http_api}/jobs/no-such-job", timeout=5)
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["status"] == 404


def test_a_job_waits_while_no_worker_runs_and_completes_once_one_starts(
    tmp_path: Path, smtp_sink, runtime
):
    from jobcore.intake.submission import SubmissionParser
    from jobcore.runtime import build_runtime
    from jobcore.settings import ENV, Settings

    server = RedisServer(tmp_path / "redis").start()
    try:
        env = service_env(server.url, smtp_sink.url, tmp_path)
        settings = Settings.from_env({k: v for k, v in env.items() if k in ENV.values()})
        private = build_runtime(settings, job_types=runtime.job_types)
        submission = SubmissionParser(private.job_types).parse(SEED_000, now_ms=0)
        job_id = private.jobs.submit(submission).job_id
        time.sleep(1.5)
        assert private.store.get(job_id).state == "waiting"
        assert private.jobs.stats()["queues"]["email"] == 1
        worker = WorkerProcess(env, tmp_path / "worker.log", "--processes", "1").start()
        try:
            wait_until(lambda: private.store.get(job_id).state == "completed", timeout=15)
        finally:
            worker.stop()
    finally:
        server.stop()
