"""SIGTERM stops the API gracefully under load: every answer given on the way down is a 202
for a job that exists (nothing half-written, no 5xx), and the server exits 0 without a
traceback."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import requests
from conftest import ApiProcess

from jobcore.runtime import Runtime


def test_sigterm_under_load_exits_cleanly_and_every_accepted_job_exists(
    env: dict[str, str], tmp_path: Path, runtime: Runtime
) -> None:
    api = ApiProcess(env, tmp_path / "api.log").start()
    marker = uuid.uuid4().hex
    accepted: list[str] = []
    statuses: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def post_until_refused() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    answer = session.post(
                        api.url + "/jobs",
                        json={"type": "dummy", "payload": {"echo": marker}},
                        timeout=10,
                    )
                except requests.ConnectionError:
                    return  # the server is gone or going: no answer is no promise
                with lock:
                    statuses.append(answer.status_code)
                    if answer.status_code == 202:
                        accepted.append(answer.json()["jobId"])

    clients = [threading.Thread(target=post_until_refused) for _ in range(8)]
    for client in clients:
        client.start()
    try:
        time.sleep(1.0)
        assert api.process is not None
        os.killpg(api.process.pid, signal.SIGTERM)
        assert api.process.wait(timeout=20) == 0, api.log()[-2000:]
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=15)
        api.stop()

    assert len(accepted) > 50
    assert set(statuses) == {202}, sorted(set(statuses))
    for job_id in accepted:
        assert runtime.jobs.get(job_id).payload == {"echo": marker}
    log = api.log()
    assert "Traceback" not in log, log[-3000:]
