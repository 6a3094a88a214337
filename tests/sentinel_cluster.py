"""A primary, its replicas and Sentinels on free loopback ports, for tests that fail it over.

The Sentinels run the shipped ``deploy/sentinel.conf`` with only the ports and the primary's
address changed, so a test measures the settings users get.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import redis
from conftest import ROOT, wait_until

from jobcore_devstack.redis_server import RedisServer, free_port, redis_server_binary

#: The Sentinel settings Jobcore ships.
SHIPPED_SENTINEL_CONF = ROOT / "deploy" / "sentinel.conf"
#: The name the shipped file monitors (REDIS_URL's path names it).
SERVICE = "jobcore"


def shipped_sentinel_setting(name: str) -> int:
    """A number of the shipped file: ``down-after-milliseconds``, ``failover-timeout``."""
    text = SHIPPED_SENTINEL_CONF.read_text()
    match = re.search(rf"^sentinel {name} {SERVICE} (\d+)$", text, re.M)
    assert match, f"deploy/sentinel.conf sets no {name}"
    return int(match.group(1))


def sentinel_config(port: int, primary_host: str, primary_port: int, data_dir: Path) -> str:
    """The shipped file with this Sentinel's port and the primary's address."""
    text = SHIPPED_SENTINEL_CONF.read_text()
    text = re.sub(r"^port \d+$", f"port {port}", text, flags=re.M)
    text = re.sub(
        rf"^sentinel monitor {SERVICE} \S+ \d+ (\d+)$",
        rf"sentinel monitor {SERVICE} {primary_host} {primary_port} \1",
        text,
        flags=re.M,
    )
    return text + f"\nbind 127.0.0.1\ndir {data_dir}\nlogfile {data_dir / 'sentinel.log'}\n"


class Sentinel:
    """One ``redis-server --sentinel`` process."""

    def __init__(self, data_dir: Path, primary_port: int) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.primary_port = primary_port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Sentinel:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "sentinel.conf"
        config.write_text(sentinel_config(self.port, "127.0.0.1", self.primary_port, self.data_dir))
        self.process = subprocess.Popen(
            [redis_server_binary(), str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = self.client()
        wait_until(lambda: _answers(client), timeout=10, message=f"sentinel on {self.port}")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=1, decode_responses=True)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class SentinelCluster:
    """A primary, ``replicas`` replicas and ``sentinels`` Sentinels, all on loopback."""

    def __init__(self, tmp: Path, *, replicas: int = 2, sentinels: int = 3) -> None:
        self.tmp = tmp
        self.primary = RedisServer(tmp / "primary")
        self.replicas = [
            RedisServer(
                tmp / f"replica-{n}",
                extra_args=("--replicaof", "127.0.0.1", str(self.primary.port)),
            )
            for n in range(replicas)
        ]
        self.sentinels = [
            Sentinel(tmp / f"sentinel-{n}", self.primary.port) for n in range(sentinels)
        ]

    @property
    def servers(self) -> list[RedisServer]:
        return [self.primary, *self.replicas]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> SentinelCluster:
        try:
            self.primary.start()
            for replica in self.replicas:
                replica.start()
            self.wait_replicas_online(self.primary, len(self.replicas))
            for sentinel in self.sentinels:
                sentinel.start()
            wait_until(self._sentinels_know_everyone, timeout=30, message="sentinels agree")
        except BaseException:
            self.stop()
            raise
        return self

    def _sentinels_know_everyone(self) -> bool:
        for sentinel in self.sentinels:
            try:
                state = sentinel.client().sentinel_master(SERVICE)
            except redis.RedisError:
                return False
            if int(state["num-slaves"]) < len(self.replicas):
                return False
            if int(state["num-other-sentinels"]) < len(self.sentinels) - 1:
                return False
        return True

    @staticmethod
    def wait_replicas_online(server: RedisServer, count: int, timeout: float = 30) -> None:
        client = redis.Redis(port=server.port, socket_timeout=1, decode_responses=True)

        def online() -> bool:
            info = client.info("replication")
            return (
                sum(
                    1
                    for key, value in info.items()
                    if key.startswith("slave") and isinstance(value, dict)
                    if value.get("state") == "online"
                )
                >= count
            )

        wait_until(online, timeout=timeout, message=f"{count} replica(s) online")

    def primary_port(self) -> int:
        """The port the Sentinels name as the primary now."""
        for sentinel in self.sentinels:
            try:
                _host, port = sentinel.client().sentinel_get_master_addr_by_name(SERVICE)
                return int(port)
            except (redis.RedisError, TypeError):
                continue
        raise AssertionError("no Sentinel answered")

    def server_on(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def pause(self, server: RedisServer) -> None:
        """SIGSTOP: a replica that lags, its socket buffers filling."""
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)

    def resume(self, server: RedisServer) -> None:
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        for server in self.servers:
            if server.process and server.process.poll() is None:
                self.resume(server)  # a stopped process cannot act on SIGTERM
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.kill()


def wait_for_new_primary(cluster: SentinelCluster, old_port: int, timeout: float = 60) -> int:
    """The port of the primary the Sentinels promoted in place of ``old_port``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            port = cluster.primary_port()
        except AssertionError:
            port = old_port
        if port != old_port:
            return port
        time.sleep(0.1)
    raise AssertionError(f"no failover within {timeout} s")
