"""A private Docker engine: its own ``dockerd`` with its own socket, data and state under one
temporary directory, no bridge and no iptables rules (containers use the host's network),
and nothing left behind once stopped: no process, no mount, no file.

Needs root, as ``dockerd`` does. The machine's own engine, if any, is never used.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from containers.mounts import remove_tree

#: What this machine allows: no bridge network, no iptables, vfs (no overlay mounts).
DOCKERD_OPTIONS = ("--storage-driver=vfs", "--bridge=none", "--iptables=false")
#: containerd namespaces of our own, in case the machine runs a containerd dockerd would join.
CONTAINERD_NAMESPACE = "jobcore-test"
#: Seconds for the engine to answer after it starts.
START_TIMEOUT = 60.0
#: Seconds for the engine to exit after SIGTERM (it stops its containers first).
STOP_TIMEOUT = 60.0
#: Seconds a docker command may take unless the caller says otherwise.
COMMAND_TIMEOUT = 120.0
#: Size of the in-memory file system for the engine's data, when the machine can spare it:
#: vfs copies every layer and every container's file system in full (about 7 GiB for the
#: container tier), which costs minutes of disk writes and deletes on a busy machine.
DATA_TMPFS_BYTES = 12 * 2**30
#: Memory that must stay available beside a full in-memory data directory.
MEMORY_HEADROOM_BYTES = 4 * 2**30


def memory_available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def can_keep_data_in_memory() -> bool:
    return memory_available_bytes() >= DATA_TMPFS_BYTES + MEMORY_HEADROOM_BYTES


class EngineError(RuntimeError):
    """A docker command failed; the message carries its output."""


class DockerEngine:
    """``DockerEngine(dockerd, docker).start()``, then ``docker(...)``, then ``stop()``.

    With ``data_in_memory`` the data root is a tmpfs of ``DATA_TMPFS_BYTES`` at most."""

    def __init__(
        self, dockerd: str, docker: str, parent: Path | None = None, data_in_memory: bool = False
    ) -> None:
        self.dockerd, self.client = dockerd, docker
        self.data_in_memory = data_in_memory
        # A short path: the engine's unix sockets live below it (108 bytes at most).
        self.root = Path(tempfile.mkdtemp(prefix="jobcore-engine-", dir=parent))
        self.socket = self.root / "docker.sock"
        self.data_root = self.root / "data"
        self.exec_root = self.root / "exec"
        self.log_path = self.root / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for docker and docker-compose: this engine, no user client config,
        BuildKit (the classic builder makes a container, a full vfs copy, per step)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        return env | {
            "DOCKER_HOST": self.host,
            "DOCKER_CONFIG": str(self.root / "client"),
            "DOCKER_BUILDKIT": "1",
        }

    def start(self) -> DockerEngine:
        if self.data_in_memory:
            self.data_root.mkdir()
            subprocess.run(
                [
                    "mount",
                    "-t",
                    "tmpfs",
                    "-o",
                    f"size={DATA_TMPFS_BYTES},mode=0711",
                    "jobcore-engine-data",
                    str(self.data_root),
                ],
                check=True,
            )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.dockerd,
                    *DOCKERD_OPTIONS,
                    f"--data-root={self.data_root}",
                    f"--exec-root={self.exec_root}",
                    f"--pidfile={self.root / 'dockerd.pid'}",
                    f"--host={self.host}",
                    f"--containerd-namespace={CONTAINERD_NAMESPACE}",
                    f"--containerd-plugins-namespace={CONTAINERD_NAMESPACE}-plugins",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while self.docker("version", check=False, timeout=10).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise EngineError(f"dockerd did not start:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        return self

    def docker(
        self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run the docker client against this engine; raise ``EngineError`` if it fails."""
        done = subprocess.run(
            [self.client, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise EngineError(f"docker {' '.join(args)}: exit {done.returncode}\n{done.stderr}")
        return done

    def inspect(self, *names: str, kind: str = "container") -> list[dict[str, Any]]:
        found = self.docker(kind, "inspect", *names).stdout
        return list(json.loads(found))

    def stop(self) -> None:
        """Stop the engine (its containers first), then remove every trace of it: its
        leftover mounts (``exec/netns/default``, the in-memory data root) and directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._kill_leftover_processes()
        remove_tree(self.root)

    def _kill_leftover_processes(self) -> None:
        """containerd shims outlive a killed engine; they name our directory on their
        command line, so they are found (and killed) by that, one pid at a time."""
        marker = str(self.root).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                command_line = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in command_line:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
