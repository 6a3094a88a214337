"""The processes a bench run starts: worker groups and the API, with their CPU time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

#: Seconds a process group gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 20.0
_TICKS = os.sysconf("SC_CLK_TCK")
BIN = Path(sys.executable).parent


def descendants(root: int) -> list[int]:
    """``root`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


class ProcessGroup:
    """A command started in its own session, stopped by SIGTERM to that session."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ProcessGroup:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pids(self) -> list[int]:
        return descendants(self.pid)

    def cpu(self) -> dict[int, float]:
        return {pid: cpu_seconds(pid) for pid in self.pids()}

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.process.returncode}); see {self.log}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # Dramatiq's worker processes may outlive their parent by a moment.
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.killpg(self.process.pid, signal.SIGKILL)


def jobcore_workers(env: dict[str, str], processes: int, threads: int, log: Path) -> ProcessGroup:
    command = [str(BIN / "jobcore-worker"), "--processes", str(processes)]
    return ProcessGroup("jobcore-worker", [*command, "--threads", str(threads)], env, log)


def bare_workers(env: dict[str, str], processes: int, threads: int, log: Path) -> ProcessGroup:
    command = [sys.executable, "-m", "dramatiq", "bench.bare_actors"]
    command += ["--processes", str(processes), "--threads", str(threads)]
    return ProcessGroup("bare dramatiq", command, env, log)


def api_server(env: dict[str, str], port: int, log: Path) -> ProcessGroup:
    command = [str(BIN / "jobcore-api"), "--bind", f"127.0.0.1:{port}"]
    return ProcessGroup("jobcore-api", command, env, log)


def wait_http(url: str, group: ProcessGroup, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        group.check_alive()
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")
