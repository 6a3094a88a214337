"""One pre-fill producer process: ``python -m bench.fill {jobcore|bare} JOBS RUN_ID``.

Sends ``JOBS`` parked messages (see ``bench.producers``) the way its system's producers do,
then prints the wall and CPU seconds of the sends, spans exported included. Several
run at once, as several API processes would.
"""

from __future__ import annotations

import json
import os
import sys
import time

from bench import roundtrips
from bench.producers import BareProducer, JobcoreProducer
from jobcore.settings import Settings
from jobcore.telemetry.tracing import configure_tracing, shutdown_tracing


def main() -> None:
    system, jobs, run_id = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if system == "jobcore":
        configure_tracing("jobcore-bench-fill")
        producer: JobcoreProducer | BareProducer = JobcoreProducer(Settings.from_env(), run_id)
    else:
        producer = BareProducer(os.environ["REDIS_URL"])
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(jobs):
        producer.submit(parked=True)
    shutdown_tracing()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    roundtrips.write_now()
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu}))


if __name__ == "__main__":
    main()
