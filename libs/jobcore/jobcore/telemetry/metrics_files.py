"""The directory where the processes of one command keep their Prometheus metric files.

Kept apart from ``jobcore.telemetry.metrics`` because it must run before ``prometheus_client`` is
imported: the client picks memory or files for its values at import time.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

#: The variable prometheus_client reads when it is first imported.
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(command: str) -> str:
    """Give this command and the processes it forks one metrics directory, emptied.

    Call before anything imports ``prometheus_client`` and before forking. A directory
    named by the environment is kept (its stale files removed, as the client requires);
    otherwise a fresh temporary one is made and named in the environment.
    """
    path = os.environ.get(MULTIPROC_DIR_ENV, "")
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        for stale in Path(path).glob("*.db"):
            stale.unlink(missing_ok=True)
    else:
        path = tempfile.mkdtemp(prefix=f"jobcore-{command}-metrics-")
        os.environ[MULTIPROC_DIR_ENV] = path
        atexit.register(_remove_if_owner, path, os.getpid())
    return path


def _remove_if_owner(path: str, owner_pid: int) -> None:
    # Forked children (gunicorn workers) inherit this hook: only the creator removes.
    if os.getpid() == owner_pid:
        shutil.rmtree(path, ignore_errors=True)
