"""One ``make run`` per ``var/`` directory: a lock file held for the stack's whole life."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from jobcore.errors import ConfigurationError

#: The lock file, under the var directory; it holds the owner's pid.
LOCK_FILE = "stack.lock"


class StackLock:
    """An exclusive ``flock`` on ``<var>/stack.lock``, released when the process ends (even
    when it is killed: the kernel drops the lock with the file descriptor)."""

    def __init__(self, var_dir: Path) -> None:
        self.path = Path(var_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> StackLock:
        """Take the lock or raise ``ConfigurationError`` naming the process that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise ConfigurationError(
                f"another jobcore-stack (pid {holder}) is already running on {self.path.parent}/; "
                "stop it first, or give this one its own JOBCORE_VAR_DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the lock
            self._fd = None
