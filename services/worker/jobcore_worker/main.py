"""``jobcore-worker``: run Dramatiq worker processes for chosen queues."""

from __future__ import annotations

import argparse
import os
import sys

from jobcore.settings import Settings


def main(argv: list[str] | None = None) -> None:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="jobcore-worker", description=__doc__)
    parser.add_argument(
        "--queues",
        default=settings.worker_queues,
        help="comma-separated queues to consume (default: every job type's)",
    )
    parser.add_argument("--processes", type=int, default=settings.worker_processes)
    parser.add_argument("--threads", type=int, default=settings.worker_threads)
    args = parser.parse_args(argv)

    command = [
        sys.executable,
        "-m",
        "dramatiq",
        "jobcore_worker.entry",
        "--skip-logging",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
    ]
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    if queues:
        command += ["--queues", *queues]
        os.environ["JOBCORE_WORKER_QUEUES"] = ",".join(queues)
    sys.stdout.flush()
    os.execv(sys.executable, command)


if __name__ == "__main__":
    main()
