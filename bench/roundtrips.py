"""Redis round trips counted in the client: a hook on redis-py's connection.

Every command and every pipeline reaches Redis through one ``send_packed_command`` call, so
counting those calls counts round trips (commands inside Lua scripts and pipelines are
Redis's to count, in ``INFO commandstats``). The bench process counts in memory; worker
processes, which leave by ``os._exit``, write their count to a file every
``WRITE_INTERVAL`` (see ``bench/hooks/sitecustomize.py``).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

#: Variable naming the directory where worker processes write their counts.
DIRECTORY_ENV = "BENCH_ROUNDTRIP_DIR"
#: Seconds between two writes of a worker process's count.
WRITE_INTERVAL = 0.1

_lock = threading.Lock()
_count = [0]
_installed = [False]
_path: list[Path] = []


def install() -> None:
    """Count every round trip this process makes from now on (idempotent)."""
    from redis.connection import AbstractConnection

    if _installed[0]:
        return
    original = AbstractConnection.send_packed_command

    def counted(self: AbstractConnection, command: object, check_health: bool = True) -> None:
        with _lock:
            _count[0] += 1
        original(self, command, check_health)  # type: ignore[arg-type]

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
    _installed[0] = True


def count() -> int:
    """Round trips made by this process since ``install``."""
    with _lock:
        return _count[0]


def write_to(directory: str) -> None:
    """Install the hook and keep ``<directory>/<pid>`` holding this process's count.

    A forked child starts its own count and writer (Dramatiq forks its worker processes).
    """
    install()

    def start_writer() -> None:
        with _lock:
            _count[0] = 0
        _path[:] = [Path(directory) / str(os.getpid())]

        def loop() -> None:
            while True:
                write_now()
                time.sleep(WRITE_INTERVAL)

        threading.Thread(target=loop, name="bench-roundtrips", daemon=True).start()

    os.register_at_fork(after_in_child=start_writer)
    start_writer()


def write_now() -> None:
    """Write this process's count now (a process that exits normally calls it last)."""
    if _path:
        _path[0].write_text(str(count()))


def total_in(directory: Path) -> int:
    """Sum of the counts every process wrote under ``directory``."""
    total = 0
    for path in directory.iterdir():
        try:
            total += int(path.read_text() or 0)
        except (OSError, ValueError):
            continue
    return total
