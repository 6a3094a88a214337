"""A small process supervisor: prefixed logs, restarts, and an ordered shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from jobcore.errors import EXIT_REFUSED_TO_START

#: Seconds a service gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 30.0
#: Seconds before restarting a service that died; doubled while it keeps dying young.
RESTART_PAUSE = 1.0
RESTART_PAUSE_MAX = 30.0
#: A service that lived less than this many seconds died young.
YOUNG = 10.0
#: After this many young deaths in a row the supervisor gives up on the service.
CRASH_LOOP_LIMIT = 5
_COLORS = ["\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m"]
_RESET = "\033[0m"

_print_lock = threading.Lock()


def say(name: str, line: str, color: str = "") -> None:
    use_color = color and sys.stdout.isatty()
    prefix = f"{color}{name:>9} |{_RESET}" if use_color else f"{name:>9} |"
    with _print_lock:
        sys.stdout.write(f"{prefix} {line}\n")
        sys.stdout.flush()


@dataclass
class Service:
    name: str
    command: list[str]
    env: dict[str, str]
    restart: bool = True
    color: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    started_at: float = 0.0
    young_deaths: int = 0
    restart_at: float | None = None
    #: Stopped after every other service, which may need it while they stop (the store).
    stops_last: bool = False
    _signalled: bool = field(default=False, repr=False)

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.restart_at = None
        self._signalled = False
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, args=(self.process,), daemon=True).start()
        say(self.name, f"started (pid {self.process.pid})", self.color)

    def _pump(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            say(self.name, raw.decode("utf-8", "replace").rstrip(), self.color)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_stop(self) -> None:
        """SIGTERM, without waiting: the service's own leader forwards it to its children."""
        if self.alive() and not self._signalled:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            self._signalled = True

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop and wait, killing the service after ``timeout``; said once, also when it had
        stopped already on the signal ``signal_stop`` sent."""
        if self.process is None or not (self._signalled or self.alive()):
            return
        self.signal_stop()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            say(self.name, "did not stop in time; killing", self.color)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._signalled = False
        say(self.name, f"stopped ({self.process.returncode})", self.color)


class Supervisor:
    """Starts services in order, restarts those that die, stops them together and the store
    last."""

    def __init__(self) -> None:
        self.services: list[Service] = []
        self._stopping = threading.Event()

    def add(self, service: Service) -> None:
        service.color = _COLORS[len(self.services) % len(_COLORS)]
        self.services.append(service)

    def run(self) -> int:
        """Run until a signal or until a service cannot be kept up; the exit status."""
        for service in self.services:
            service.start()
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        status = 0
        while not self._stopping.wait(0.5):
            for service in self.services:
                if self._stopping.is_set():
                    break
                if not self._keep_up(service):
                    status = 1
                    self._stopping.set()
        self.stop_all()
        return status

    def _keep_up(self, service: Service) -> bool:
        """Restart a dead service after its pause; ``False`` when it is given up on."""
        now = time.monotonic()
        if service.restart_at is not None:
            if now >= service.restart_at:
                service.start()
            return True
        if service.alive():
            return True
        code = service.process.returncode if service.process else None
        if code == EXIT_REFUSED_TO_START:
            say(service.name, "cannot start (see the line above); stopping everything")
            return False
        if not service.restart:
            say(service.name, f"exited ({code}); stopping everything")
            return False
        lived = now - service.started_at
        service.young_deaths = service.young_deaths + 1 if lived < YOUNG else 0
        if service.young_deaths >= CRASH_LOOP_LIMIT:
            say(
                service.name,
                f"exited ({code}) {service.young_deaths} times in a row, each within {YOUNG:g} s "
                "of starting; giving up and stopping everything",
            )
            return False
        pause = min(RESTART_PAUSE * 2 ** max(service.young_deaths - 1, 0), RESTART_PAUSE_MAX)
        say(service.name, f"exited ({code}); restarting in {pause:g} s", service.color)
        service.restart_at = now + pause
        return True

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stopping.set()

    def stop_all(self) -> None:
        """Every service but those that stop last is told to stop at once (the API refuses
        new requests while the workers finish theirs), each is waited for, then the rest."""
        first = [s for s in self.services if not s.stops_last]
        for service in first:
            service.signal_stop()
        for service in reversed(first):
            service.stop()
        for service in reversed(self.services):
            if service.stops_last:
                service.stop()
