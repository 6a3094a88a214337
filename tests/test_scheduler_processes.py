"""Two real periodiq scheduler processes and a worker, across one minute boundary.

periodiq sleeps in real time (there is no clock to inject into another process), so this
test waits for one real minute boundary: both schedulers tick every fire time, and each
fire time still yields exactly one job, which a worker completes.
"""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import BIN, wait_for_state, wait_until

from jobcore.clock import now_ms

#: Longest the test waits for the first ticks, then for the next minute's ticks, in seconds.
FIRST_TICK_TIMEOUT = 20
NEXT_MINUTE_TIMEOUT = 70


def heartbeat_fires(log: Path) -> dict[datetime, str]:
    """Fire time → job id of every heartbeat tick a scheduler logged."""
    fires = {}
    for line in log.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "schedule fired" and event.get("schedule") == "heartbeat":
            fires[datetime.fromisoformat(event["fire_time"])] = event["job_id"]
    return fires


@pytest.mark.faults
def test_two_schedulers_across_a_minute_boundary_make_one_job_per_fire_time(
    env, runtime, worker, tmp_path: Path
):
    started_ms = now_ms()
    logs = [tmp_path / f"scheduler-{i}.log" for i in range(2)]
    processes = [
        subprocess.Popen(
            [str(BIN / "jobcore-scheduler")],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for log in logs
    ]
    try:
        # Each scheduler ticks the minute it starts in; then both must tick the next one.
        firsts = wait_until(
            lambda: all(heartbeat_fires(log) for log in logs) and logs,
            timeout=FIRST_TICK_TIMEOUT,
            message="the first ticks",
        )
        first = min(min(heartbeat_fires(log)) for log in firsts)
        boundary = first + timedelta(minutes=1)
        wait_until(
            lambda: all(boundary in heartbeat_fires(log) for log in logs),
            timeout=NEXT_MINUTE_TIMEOUT,
            interval=0.5,
            message=f"both schedulers to tick {boundary}",
        )
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=20)

    fires = [heartbeat_fires(log) for log in logs]
    for fire_time in set(fires[0]) & set(fires[1]):
        assert fires[0][fire_time] == fires[1][fire_time], f"two jobs for {fire_time}"
    job_per_fire_time = {**fires[0], **fires[1]}
    assert boundary in job_per_fire_time
    assert len(set(job_per_fire_time.values())) == len(job_per_fire_time)

    # Every heartbeat job made since the test began is one of those, once.
    made = [
        job.id
        for job in runtime.store.list(None, "dummy", 100_000, None).items
        if job.payload == {"echo": "heartbeat"} and job.created_at >= started_ms
    ]
    assert sorted(made) == sorted(job_per_fire_time.values())
    for job_id in made:
        wait_for_state(runtime, job_id, "completed")
    assert all(process.returncode == 0 for process in processes)
