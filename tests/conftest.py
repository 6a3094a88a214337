"""Fixtures that start the real things: redis-server, an SMTP sink, worker processes, gunicorn."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from falcon import testing

from jobcore.broker import job_message
from jobcore.clock import now_ms
from jobcore.jobs import new_job_id
from jobcore.model.catalogue import load_job_types
from jobcore.model.records import JobRecord
from jobcore.runtime import Runtime, build_runtime
from jobcore.settings import ENV, Settings
from jobcore.store import keys, transitions
from jobcore.store.transitions import Claim, NewJob
from jobcore_api.app import create_app
from jobcore_devstack.redis_server import RedisServer, describe_redis_server, free_port
from jobcore_devstack.smtp_sink import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: Job types used only by the tests (see tests/job_plugins.py).
TEST_PLUGINS = "job_plugins"

#: Settings that make recovery fast enough to test in seconds.
FAST_ENV = {
    "JOBCORE_OWNER_TTL": "3s",
    "JOBCORE_HEARTBEAT_INTERVAL": "0.5s",
    "JOBCORE_SWEEP_INTERVAL": "0.5s",
    "JOBCORE_BROKER_HEARTBEAT_TIMEOUT": "2s",
    "JOBCORE_BROKER_MAINTENANCE_CHANCE": "1000000",
    # No fixed metrics port in tests (9191 by default); tests needing one pick a free port.
    "JOBCORE_WORKER_METRICS_PORT": "0",
}


def require_tool(name: str, install: str) -> str:
    """The tool's path; a laptop without it skips, CI (CI=true) fails."""
    found = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if found:
        return found
    message = f"{name} is not installed ({install})"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def pytest_report_header(config: pytest.Config) -> str:
    """Which Redis the tests run (``jobcore_devstack.redis_server.redis_server_binary``)."""
    return f"redis: {describe_redis_server()}"


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 15.0,
    interval: float = 0.05,
    message: str = "condition",
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def service_env(redis_url: str, smtp_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(FAST_ENV)
    env.update(
        {
            "REDIS_URL": redis_url,
            "SMTP_URL": smtp_url,
            "JOBCORE_OUTPUT_DIR": str(tmp / "output"),
            "JOBCORE_VAR_DIR": str(tmp / "var"),
            "JOBCORE_JOB_MODULES": TEST_PLUGINS,
            "PYTHONPATH": str(ROOT / "tests"),
            "PYTHONUNBUFFERED": "1",
            "TZ": "UTC",
        }
    )
    env.update(extra)
    return env


class WorkerProcess:
    """``jobcore-worker`` as a real process group, with its output kept in a file."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.env, self.log_path, self.args = env, log_path, args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(BIN / "jobcore-worker"), *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(
            lambda: (
                self.log_path.read_text().count("ready for action") >= 1
                or self.process.poll() is not None
            ),
            timeout=30,
            message="worker ready",
        )
        assert self.process.poll() is None, self.log_path.read_text()[-3000:]
        return self

    def signal(self, signum: int) -> None:
        """SIGTERM goes to the supervisor (it forwards once); SIGKILL to the whole group."""
        if self.process and self.process.poll() is None:
            if signum == signal.SIGKILL:
                os.killpg(self.process.pid, signum)
            else:
                self.process.send_signal(signum)

    def stop(self, timeout: float = 30) -> None:
        if self.process and self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text()


class ApiProcess:
    """``jobcore-api`` (gunicorn) on a free port as a process group, its output in a file."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 2) -> None:
        self.env = dict(env, JOBCORE_API_WORKERS=str(workers))
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(BIN / "jobcore-api"), "--bind", f"127.0.0.1:{self.port}"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(self._up, timeout=30, message="gunicorn")
        except BaseException:
            self.stop()
            raise
        return self

    def _up(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log()[-3000:]
        try:
            return requests.get(self.url + "/healthz", timeout=2).status_code == 200
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


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jobcore")


@pytest.fixture(scope="session")
def redis_server(tmp_root: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_root / "redis").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink(free_port()) as sink:
        yield sink


@pytest.fixture(scope="session")
def env(redis_server: RedisServer, smtp_sink: SmtpSink, tmp_root: Path) -> dict[str, str]:
    return service_env(redis_server.url, smtp_sink.url, tmp_root)


@pytest.fixture(scope="session")
def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env({k: v for k, v in env.items() if k in ENV.values()})


@pytest.fixture(scope="session")
def runtime(settings: Settings, env: dict[str, str]) -> Runtime:
    sys.path.insert(0, str(ROOT / "tests"))
    return build_runtime(settings, job_types=load_job_types(TEST_PLUGINS))


@pytest.fixture(scope="session")
def api(settings: Settings, runtime: Runtime) -> testing.TestClient:
    """The Falcon app in-process over the real Redis (HTTP semantics without sockets)."""
    return testing.TestClient(create_app(settings, runtime))


@pytest.fixture(scope="session")
def worker(env: dict[str, str], tmp_root: Path) -> Iterator[WorkerProcess]:
    """One worker process group (2 processes x 4 threads) consuming every queue."""
    process = WorkerProcess(env, tmp_root / "worker.log", "--processes", "2", "--threads", "4")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def http_api(env: dict[str, str], tmp_root: Path) -> Iterator[str]:
    """gunicorn serving the real app on a free port; yields its base URL."""
    api = ApiProcess(env, tmp_root / "gunicorn.log", workers=2).start()
    try:
        yield api.url
    finally:
        api.stop()


def submit(api: testing.TestClient, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    result = api.simulate_post("/jobs", json=body, headers=headers or None)
    assert result.status_code in (200, 202), result.text
    return dict(result.json)


def start_job(runtime: Runtime, job_id: str, worker_id: str, generation: int = 1) -> Claim:
    """Start a job's attempt as a worker process would (claim, then begin), through a
    private queue so no other message is fetched; the attempt's number is the claim's."""
    queue, message_id = f"held-{job_id}", f"{job_id}.{generation}"
    body = job_message(job_id, "dummy", queue, generation, redis_message_id=message_id)
    runtime.client.hset(keys.messages(queue), message_id, body.encode())
    runtime.client.rpush(keys.ready_queue(queue), message_id)
    claimed = runtime.executor.run(
        transitions.claim(
            queue,
            worker_id,
            1,
            now_ms(),
            heartbeat_timeout_ms=60_000,
            maintenance=False,
            dead_message_ttl_ms=60_000,
        )
    )
    (fetched,) = claimed.fetched
    assert fetched.claim is not None
    started = [(job_id, generation, fetched.claim.attempt, now_ms())]
    assert runtime.executor.run(transitions.begin(worker_id, started)) == []
    return fetched.claim


def new_job(
    queue: str,
    *,
    job_id: str | None = None,
    job_type: str = "dummy",
    payload_json: str = "{}",
    delayed: bool = False,
    max_attempts: int = 3,
) -> NewJob:
    """A job record to create through the store directly (``RecordStore.create``): waiting,
    or delayed ten minutes."""
    now = now_ms()
    return NewJob(
        id=job_id or new_job_id(),
        job_type=job_type,
        queue=queue,
        payload_json=payload_json,
        state="delayed" if delayed else "waiting",
        due_at=now + 600_000 if delayed else now,
        run_at=now + 600_000 if delayed else None,
        max_attempts=max_attempts,
        max_deliveries=max_attempts + 5,
        backoff_json="{}",
        trace_id="0" * 32,
        traceparent="",
        created_at=now,
    )


def wait_for_state(runtime: Runtime, job_id: str, *states: str, timeout: float = 20.0) -> JobRecord:
    def reached() -> JobRecord | None:
        record = runtime.store.get(job_id)
        return record if record.state in states else None

    return wait_until(reached, timeout=timeout, message=f"job {job_id} to be {states}")  # type: ignore[no-any-return]
