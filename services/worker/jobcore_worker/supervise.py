"""``jobcore-worker``: supervised Dramatiq worker processes for chosen queues.

Each of ``--processes`` runs as its own ``dramatiq --processes 1`` group and is restarted
when it exits for any reason while the worker is not stopping: Dramatiq's CLI stops every
process when one dies, and an OOM-killed process may even exit 0, so a crash must cost
one process, not all. The supervisor names each process it starts (its presence id), so
when one exits it releases that process's claimed and running jobs at once
(``RecordStore.recover_lost``) instead of waiting for its presence to expire. SIGTERM or
SIGINT stops every process gracefully (in-flight jobs finish, or are requeued when their
type is interruptible).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import psutil
import structlog

from jobcore.errors import StoreUnavailable
from jobcore.execution.job_lifecycle import check_implementations
from jobcore.presence import PROCESS_ID_VAR, new_process_id
from jobcore.settings import Settings
from jobcore.startup import refuse_to_start_on_configuration_errors
from jobcore.store.connection import connect
from jobcore.store.executor import Executor
from jobcore.store.record_store import RecordStore
from jobcore.telemetry.logs import configure_logging
from jobcore.telemetry.metrics_files import prepare_multiprocess_dir
from jobcore_worker.jobs import IMPLEMENTATIONS
from jobcore_worker.plugins import load_plugins

#: Pause before restarting a process, doubled while it keeps dying young, in seconds.
RESTART_PAUSE = 0.5
RESTART_PAUSE_MAX = 10.0
#: A process that lived this long is healthy again: its restart pause resets, in seconds.
HEALTHY_AFTER = 30.0


class WorkerProcess:
    """One ``dramatiq`` group of one process, restarted when it dies."""

    def __init__(self, index: int, command: list[str], releases: Releases) -> None:
        self.index = index
        self.command = command
        self.releases = releases
        self.process: subprocess.Popen[bytes] | None = None
        #: The process that runs the jobs: Dramatiq's launcher (``process``) forks it.
        self.runner: psutil.Process | None = None
        self.process_id = ""
        self.released = False
        self.started_at = 0.0
        self.pause = RESTART_PAUSE
        self.restart_at: float | None = None

    def start(self) -> None:
        self.process_id = new_process_id(f"{os.getpid()}.{self.index}")
        env = {**os.environ, PROCESS_ID_VAR: self.process_id}
        self.process = subprocess.Popen(self.command, env=env)
        self.runner = None
        self.released = False
        self.started_at = time.monotonic()
        self.restart_at = None

    def check(self) -> None:
        """Schedule a restart if the process died (releasing its jobs at once); perform it
        when its pause is over."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.start()
            return
        if self.process is None:
            return
        if self.process.poll() is None:
            if self._runner_died():
                # Its launcher notices only seconds later: the jobs go back now.
                self._release()
            return
        self._release()
        lived = now - self.started_at
        self.pause = (
            RESTART_PAUSE if lived > HEALTHY_AFTER else min(self.pause * 2, RESTART_PAUSE_MAX)
        )
        log.warning(
            f"worker process {self.index} exited ({self.process.returncode}) after "
            f"{lived:.1f} s; restarting in {self.pause:.1f} s",
            exit_code=self.process.returncode,
        )
        self.restart_at = now + self.pause

    def _release(self) -> None:
        if not self.released:
            self.released = True
            self.releases.add(self.process_id)

    def _runner_died(self) -> bool:
        assert self.process is not None
        try:
            if self.runner is None:
                children = psutil.Process(self.process.pid).children()
                if not children:
                    return False
                self.runner = children[0]
            return bool(self.runner.status() == psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return self.runner is not None

    def terminate(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self) -> None:
        if self.process:
            self.process.wait()
            self._release()


class Releases:
    """Dead processes whose jobs go back to ``waiting`` now: tried at once, and again on
    the next ticks while Redis cannot be reached (orphan recovery covers a supervisor that
    gives up, once the process's presence expires)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pending: list[str] = []
        self._store: RecordStore | None = None

    def add(self, process_id: str) -> None:
        self.pending.append(process_id)
        self.run()

    def run(self) -> None:
        while self.pending:
            process_id = self.pending[0]
            try:
                released = self.store().recover_lost(process_id)
            except StoreUnavailable:
                return
            self.pending.pop(0)
            if released:
                log.info(
                    f"released {len(released)} job(s) of worker process {process_id}",
                    job_ids=released,
                )

    def store(self) -> RecordStore:
        if self._store is None:
            self._store = RecordStore(Executor(connect(self.settings)))
        return self._store


def dramatiq_command(threads: int, queues: list[str], shutdown_timeout: float) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "dramatiq",
        "jobcore_worker.entry",
        "--skip-logging",
        "--processes",
        "1",
        "--threads",
        str(threads),
        # How long a stopping process waits for its running jobs before it exits anyway
        # (a job still running then is recovered as an orphan).
        "--worker-shutdown-timeout",
        str(int(shutdown_timeout * 1000)),
    ]
    if queues:
        command += ["--queues", *queues]
    return command


#: The supervisor's own lines, JSON like every other (``configure_logging`` in ``main``).
log = structlog.get_logger("jobcore.worker.supervisor")


def main(argv: list[str] | None = None) -> None:
    with refuse_to_start_on_configuration_errors("worker"):
        settings = Settings.from_env()
        configure_logging(settings.log_level, service="worker", redact=settings.redacted_fields)
        # The job types and their implementations, checked once before any process starts.
        check_implementations(*load_plugins(settings.job_modules, IMPLEMENTATIONS))
    _supervise(settings, argv)


def _supervise(settings: Settings, argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(prog="jobcore-worker", description=__doc__)
    parser.add_argument(
        "--queues",
        default=settings.worker_queues,
        help="comma-separated queues to consume (default: every job type's)",
    )
    parser.add_argument("--processes", type=int, default=settings.worker_processes)
    parser.add_argument("--threads", type=int, default=settings.worker_threads)
    args = parser.parse_args(argv)

    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    if queues:
        os.environ["JOBCORE_WORKER_QUEUES"] = ",".join(queues)
    # Every Dramatiq process started below writes its metrics under this one directory.
    prepare_multiprocess_dir("worker")
    command = dramatiq_command(args.threads, queues, settings.worker_shutdown_timeout)
    releases = Releases(settings)
    processes = [WorkerProcess(i, command, releases) for i in range(max(args.processes, 1))]

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for process in processes:
        process.start()
    while not stopping:
        time.sleep(0.2)
        for process in processes:
            if not stopping:
                process.check()
        releases.run()
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()


if __name__ == "__main__":
    main()
