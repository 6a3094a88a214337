"""Hosts for the scale tier: Linux network namespaces joined by veth pairs (iproute2).

``HostNetwork`` builds a star: a ``hub`` namespace that routes between every other host, each
joined to it by one veth pair created inside the two namespaces (it never appears in the
machine's own). Every host has its own loopback, address and hostname (a UTS namespace per
process, set by ``unshare``), so processes on different hosts talk over the veth links only,
and a link can be cut (``ip link set ... down``). The test process reaches the hosts from a
``client`` host of its own, entering it with ``setns`` (``inside``). ``destroy`` kills every
process in every namespace and deletes the namespaces, also after a failure.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: ``setns`` flag of a network namespace.
CLONE_NEWNET = 0x40000000
#: Where ``ip netns`` keeps a namespace's handle.
NETNS_DIR = Path("/run/netns")
#: Files ``ip netns exec`` mounts over ``/etc`` for a namespace's processes: each host gets
#: its own ``hosts`` (every host by name) and a ``resolv.conf`` naming no server, so looking
#: up a name (``socket.getfqdn()`` in smtplib) never waits on a DNS server it cannot reach.
NETNS_ETC = Path("/etc/netns")

_libc = ctypes.CDLL(None, use_errno=True)


def require_network_namespaces() -> None:
    """Skip (on a laptop) or fail (in CI) when namespaces cannot be made here."""
    missing = None
    if shutil.which("ip") is None:
        missing = "iproute2's ip is not installed (apt-get install iproute2)"
    elif shutil.which("unshare") is None:
        missing = "unshare (util-linux) is not installed"
    elif os.geteuid() != 0:
        missing = "network namespaces need root"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the scale tier cannot run: {missing}")
        pytest.skip(missing)


def ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass
class Host:
    """One network namespace: its name, its address on the star, its processes."""

    name: str
    namespace: str
    address: str
    #: The interface on the hub that leads here (cut it to cut the host off).
    hub_side: str = ""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def popen(
        self, command: list[str], env: dict[str, str], log_path: Path
    ) -> subprocess.Popen[bytes]:
        """``command`` on this host, under its hostname, its output in ``log_path``."""
        wrapped = [
            "ip",
            "netns",
            "exec",
            self.namespace,
            "unshare",
            "--uts",
            "sh",
            "-c",
            'hostname "$0" && exec "$@"',
            self.name,
            *command,
        ]
        process = subprocess.Popen(
            wrapped,
            env=env,
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def pids(self) -> list[int]:
        """Every process in this namespace, whoever started it."""
        found = ip("netns", "pids", self.namespace)
        return [int(p) for p in found.split()]

    def kill_everything(self) -> int:
        """SIGKILL every process on this host; how many there were."""
        pids = self.pids()
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in self.processes:
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        return len(pids)

    @contextmanager
    def inside(self) -> Iterator[None]:
        """This thread's sockets (and threads it starts) in this host's network namespace."""
        original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(NETNS_DIR / self.namespace, os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(original)
        finally:
            os.close(target)
            os.close(original)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


class HostNetwork:
    """A hub routing between hosts, each on its own /24 (``10.<net>.<n>.0``)."""

    def __init__(self, net: int = 77) -> None:
        self.token = uuid.uuid4().hex[:6]
        self.net = net
        self.hosts: dict[str, Host] = {}
        self.hub = self._namespace("hub", f"10.{net}.0.1")
        ip("-n", self.hub.namespace, "link", "set", "lo", "up")
        # The hub's own address, reachable from every host through its link.
        ip("-n", self.hub.namespace, "addr", "add", f"{self.hub.address}/32", "dev", "lo")
        self._sysctl(self.hub, "net.ipv4.ip_forward=1")

    def _namespace(self, name: str, address: str) -> Host:
        namespace = f"jc-{self.token}-{name}"
        ip("netns", "add", namespace)
        host = Host(name, namespace, address)
        self.hosts[name] = host
        return host

    @staticmethod
    def _sysctl(host: Host, setting: str) -> None:
        subprocess.run(
            ["ip", "netns", "exec", host.namespace, "sysctl", "-q", "-w", setting],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def add_host(self, name: str) -> Host:
        """A host joined to the hub by its own veth pair."""
        n = len(self.hosts)  # the hub is 0
        host = self._namespace(name, f"10.{self.net}.{n}.2")
        hub_side = f"to-{name}"[:15]
        ip(
            "link", "add", hub_side, "netns", self.hub.namespace, "type", "veth",
            "peer", "name", "eth0", "netns", host.namespace,
        )  # fmt: skip
        hub_address = f"10.{self.net}.{n}.1"
        ip("-n", self.hub.namespace, "addr", "add", f"{hub_address}/24", "dev", hub_side)
        ip("-n", self.hub.namespace, "link", "set", hub_side, "up")
        ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip("-n", host.namespace, "link", "set", "lo", "up")
        ip("-n", host.namespace, "link", "set", "eth0", "up")
        ip("-n", host.namespace, "route", "add", "default", "via", hub_address)
        host.hub_side = hub_side
        return host

    def write_host_files(self) -> None:
        """Each host's ``/etc/hosts`` and ``/etc/resolv.conf`` (call after the last host)."""
        names = "\n".join(f"{h.address} {h.name}" for h in self.hosts.values())
        for host in self.hosts.values():
            etc = NETNS_ETC / host.namespace
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(f"127.0.0.1 localhost\n{names}\n")
            (etc / "resolv.conf").write_text("options timeout:1 attempts:1\n")

    def cut(self, host: Host) -> None:
        """Take the host's link down: it is cut off from every other host."""
        ip("-n", self.hub.namespace, "link", "set", host.hub_side, "down")

    def restore(self, host: Host) -> None:
        ip("-n", self.hub.namespace, "link", "set", host.hub_side, "up")

    def destroy(self) -> None:
        """Kill every process in every namespace, then delete the namespaces."""
        for host in self.hosts.values():
            with suppress(RuntimeError):
                host.kill_everything()
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True, timeout=30)
            shutil.rmtree(NETNS_ETC / host.namespace, ignore_errors=True)

    def remaining(self) -> list[str]:
        """Namespaces of this network that still exist (none after ``destroy``)."""
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        return [line.split()[0] for line in listed.splitlines() if f"jc-{self.token}-" in line]
