"""py-spy sampling of bench processes (``BENCH_PROFILE=1``): collapsed stacks of the threads
holding the GIL, one file per process, summarised by ``python -m bench.profile_summary``."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from bench.processes import BIN

#: Samples per second.
RATE = 250


def start(directory: Path | None, pids: list[int], label: str) -> list[subprocess.Popen[bytes]]:
    """One py-spy per pid writing ``<directory>/<label>-<pid>.txt``; none without a directory."""
    if directory is None:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    started = []
    for pid in pids:
        out = directory / f"{label}-{pid}.txt"
        command = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--rate", str(RATE)]
        command += ["--format", "raw", "--gil", "--nonblocking", "--output", str(out)]
        started.append(
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
    if started:
        time.sleep(1.0)  # py-spy attaches before the measured work starts
    return started


def stop(profilers: list[subprocess.Popen[bytes]]) -> None:
    """SIGINT makes py-spy write what it sampled."""
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)
    for profiler in profilers:
        profiler.wait(timeout=30)
