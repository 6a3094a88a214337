"""A gunicorn-served API on a Redis of the test's own, for tests that break or flood that Redis."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import requests
from conftest import BIN, wait_until

from jobcore_devstack.redis_server import free_port


class LiveApi:
    """``jobcore-api`` under gunicorn as a process group, with its output kept in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> LiveApi:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(BIN / "jobcore-api"), "--bind", f"127.0.0.1:{self.port}"],
            env=dict(self.env, JOBCORE_API_WORKERS="1", JOBCORE_API_THREADS="4"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._up, timeout=30, message="gunicorn")
        return self

    def _up(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log()
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""
