"""``make run`` (``jobcore-stack``) as a user runs it: one stack per ``var/``, a supervisor
that gives up on a service that cannot start, and Ctrl-C that stops everything in order."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from conftest import BIN, FAST_ENV, wait_until

from jobcore_devstack.redis_server import free_port
from jobcore_devstack.smtp_sink import SmtpSink


class StackProcess:
    """``jobcore-stack`` in its own process group, its output in a file."""

    def __init__(self, tmp: Path, name: str, **env: str) -> None:
        self.log_path = tmp / f"{name}.log"
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        self.env.update(FAST_ENV)
        self.env.update(
            {
                "JOBCORE_VAR_DIR": str(tmp / "var"),
                "JOBCORE_OUTPUT_DIR": str(tmp / "output"),
                "JOBCORE_API_PORT": str(self.port),
                "PYTHONUNBUFFERED": "1",
                "TZ": "UTC",
            }
        )
        self.env.update(env)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StackProcess:
        self.process = subprocess.Popen(
            [str(BIN / "jobcore-stack")],
            env=self.env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_healthy(self) -> None:
        def up() -> bool:
            assert self.process and self.process.poll() is None, self.log()[-3000:]
            try:
                return requests.get(self.url + "/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(up, timeout=60, message="the stack's API")
        wait_until(lambda: "ready for action" in self.log(), timeout=60, message="its worker")

    def interrupt(self) -> float:
        """Ctrl-C (SIGINT to the stack's group, as a terminal sends it); seconds to exit."""
        assert self.process is not None
        started = time.monotonic()
        os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(timeout=90)
        return time.monotonic() - started

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def running(stack: StackProcess) -> Iterator[StackProcess]:
    try:
        yield stack.start()
    finally:
        if stack.process and stack.process.poll() is None:
            try:
                stack.interrupt()
            except subprocess.TimeoutExpired:
                stack.kill()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink(free_port()) as started:
        yield started


def test_a_second_stack_on_the_same_var_dir_exits_at_once_naming_the_first(tmp_path, sink):
    with running(StackProcess(tmp_path, "first", SMTP_URL=sink.url)) as first:
        first.wait_healthy()
        url_file = tmp_path / "var" / "redis.url"
        embedded = url_file.read_text()
        second = StackProcess(tmp_path, "second", SMTP_URL=sink.url).start()
        assert second.wait(timeout=30) != 0
        assert f"pid {first.process.pid}" in second.log()
        assert "already running" in second.log()
        assert "redis-server" not in second.log() and "started (pid" not in second.log()
        # The first stack is untouched: its Redis URL is still there for the CLI.
        assert url_file.read_text() == embedded
        assert requests.get(first.url + "/readyz", timeout=5).status_code == 200
        assert first.interrupt() < 30
    assert not url_file.exists()


def test_the_stack_gives_up_on_a_service_that_cannot_bind_its_port(tmp_path, sink):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = StackProcess(tmp_path, "stack", SMTP_URL=sink.url, JOBCORE_API_PORT=str(port))
        with running(stack):
            assert stack.wait(timeout=60) != 0
        log = stack.log()
        assert "cannot listen on" in log and "stopping everything" in log
        assert log.count("api |") >= 1
        assert log.count("restarting") == 0


def test_the_stack_restarts_its_embedded_redis_from_the_same_data_when_it_dies(tmp_path, sink):
    import redis

    with running(StackProcess(tmp_path, "stack", SMTP_URL=sink.url)) as stack:
        stack.wait_healthy()
        url = (tmp_path / "var" / "redis.url").read_text().strip()
        body = {"type": "dummy", "payload": {}, "delaySeconds": 3600}
        before = requests.post(stack.url + "/jobs", json=body, timeout=5).json()["jobId"]
        time.sleep(1.5)  # AOF everysec: the record is on disk
        client = redis.Redis.from_url(url, socket_timeout=1)
        os.kill(int(client.info("server")["process_id"]), signal.SIGKILL)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(lambda: not answers(), timeout=10, message="redis to die")
        wait_until(answers, timeout=30, message="redis to be restarted")
        assert (tmp_path / "var" / "redis.url").read_text().strip() == url
        assert requests.get(f"{stack.url}/jobs/{before}", timeout=5).json()["state"] == "delayed"

        def accepted() -> bool:
            answer = requests.post(stack.url + "/jobs", json=body, timeout=5)
            return answer.status_code == 202

        wait_until(accepted, timeout=30, message="the API to accept jobs again")
        assert "redis |" in stack.log() and "restarting in" in stack.log()


@pytest.mark.faults
def test_ctrl_c_with_jobs_in_flight_requeues_them_and_leaves_nothing_active(tmp_path, sink):
    from jobcore.runtime import build_runtime
    from jobcore.settings import Settings
    from jobcore_devstack.redis_server import RedisServer

    redis_server = RedisServer(tmp_path / "redis").start()
    try:
        runtime = build_runtime(Settings(redis_url=redis_server.url))
        env = {"SMTP_URL": sink.url, "REDIS_URL": redis_server.url}
        stack = StackProcess(tmp_path, "stack", **env)
        with running(stack):
            stack.wait_healthy()
            bodies = [{"type": "report", "payload": {"durationSeconds": 30}}] * 3 + [
                {"type": "dummy", "payload": {"sleepSeconds": 20}}
            ] * 3
            ids = [
                requests.post(stack.url + "/jobs", json=b, timeout=5).json()["jobId"]
                for b in bodies
            ]
            wait_until(
                lambda: all(runtime.store.get(i).state == "active" for i in ids),
                timeout=30,
                message="all six jobs running",
            )
            time.sleep(2)
            took = stack.interrupt()
        log = stack.log()
        print(f"\nstopped in {took:.1f} s")
        assert took < 30, log[-3000:]
        assert "did not stop in time" not in log and "killing" not in log
        records = {i: runtime.store.get(i) for i in ids}
        assert runtime.store.owned_ids(100) == []
        for job_id, record in records.items():
            assert record.state == "waiting", (job_id, record.state)
            assert record.attempts == 0 and record.deliveries == 0
            assert runtime.store.events(job_id)[-1]["event"] == "requeued"
        # Every job was started once before Ctrl-C and never again by a stopping process.
        starts = {i: [e["event"] for e in runtime.store.events(i)].count("started") for i in ids}
        assert set(starts.values()) == {1}, str([runtime.store.events(i) for i in ids])

        again = StackProcess(tmp_path, "again", **env)
        with running(again):
            again.wait_healthy()
            wait_until(
                lambda: all(runtime.store.get(i).state == "completed" for i in ids),
                timeout=90,
                message="all six jobs completed after the restart",
            )
        for job_id in ids:
            record = runtime.store.get(job_id)
            assert record.attempts == 1 and record.deliveries == 1
        assert "Found 'None' message" not in again.log()
    finally:
        redis_server.stop()


def test_after_ctrl_c_the_api_stops_taking_requests_at_once_while_workers_finish(tmp_path, sink):
    stack = StackProcess(tmp_path, "stack", SMTP_URL=sink.url)
    with running(stack):
        stack.wait_healthy()
        job = {"type": "welcome-email", "payload": {"email": "a@example.com", "name": "A"}}
        assert requests.post(stack.url + "/jobs", json=job, timeout=5).status_code == 202
        assert stack.process is not None
        began = time.monotonic()
        os.killpg(stack.process.pid, signal.SIGINT)

        def refused() -> float | None:
            try:
                requests.get(stack.url + "/healthz", timeout=0.5)
            except requests.RequestException:
                return time.monotonic() - began
            return None

        refused_after = wait_until(refused, timeout=30, message="the API refusing")
        stack.wait(timeout=60)
        exited_after = time.monotonic() - began
    print(f"\nAPI refused after {refused_after:.2f} s; the stack exited after {exited_after:.2f} s")
    assert refused_after < 1.5, stack.log()[-3000:]
    log = stack.log()
    # Redis stopped last, after every other service.
    stopped = [line.split("|")[0].strip() for line in log.splitlines() if "| stopped" in line]
    assert stopped[-1] == "redis" and {"api", "worker"} <= set(stopped), stopped
    assert len(stopped) == len(set(stopped)), stopped
    assert "Errno 9" not in log
