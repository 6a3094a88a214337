"""How long a crash leaves a running job before it runs again: the job sleeps, its worker
is SIGKILLed, and the time from the kill to the job's second start is measured.

Two crashes: one worker process killed under its supervisor (``jobcore-worker`` restarts
it), and a whole worker host lost (supervisor and worker process killed together, another
host's worker takes the job over). A job's starts are what its history says (Jobcore: the
``started`` events of ``RecordStore.events``; bare Dramatiq: what ``sleep_probe`` pushes),
so the measurement does not depend on the names of the states between them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import dramatiq
import psutil
import redis

from bench.bare_broker import QUEUE, STARTS_KEY, bare_broker
from bench.deadline import TimedOut, wait_for
from bench.processes import ProcessGroup
from jobcore.clock import now_ms
from jobcore.intake.submission import SubmissionParser
from jobcore.runtime import Runtime
from jobcore.store import keys

#: Dramatiq's sorted set of its consumers' heartbeats (namespace ``dramatiq``): a worker
#: process is in it once it has polled its queues.
BROKER_HEARTBEATS = "dramatiq:__heartbeats__"
#: Seconds a worker gets to start polling, and a job to start the first time.
STARTUP_TIMEOUT = 60.0
#: Seconds between two reads of a job's history while waiting for its next start.
HISTORY_POLL = 0.1

Start = dict[str, Any]


def epoch_seconds(at: Any) -> float:
    """An event's time (RFC 3339 as the API shows it, or epoch ms) in epoch seconds; now
    when it has none that can be read."""
    if isinstance(at, int | float) and not isinstance(at, bool):
        return float(at) / 1000
    if isinstance(at, str):
        try:
            return datetime.fromisoformat(at).timestamp()
        except ValueError:
            pass
    return time.time()


class Sleeper(Protocol):
    """Sends a job that sleeps and reads when it started, in one system."""

    name: str

    def submit(self, seconds: float) -> str: ...

    def starts(self, token: str) -> list[Start]: ...


class JobcoreSleeper:
    """A ``dummy`` job with ``sleepSeconds``, submitted with ``Jobs.submit``."""

    name = "jobcore"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.parser = SubmissionParser(runtime.job_types)

    def submit(self, seconds: float) -> str:
        body = {"type": "dummy", "payload": {"sleepSeconds": seconds}}
        return self.runtime.jobs.submit(self.parser.parse(body, now_ms=now_ms())).job_id

    def starts(self, token: str) -> list[Start]:
        """The job's ``started`` events, each with its time as ``at_s`` (epoch seconds)."""
        events = self.runtime.store.events(token)
        return [
            dict(event, at_s=epoch_seconds(event.get("at")))
            for event in events
            if event.get("event") == "started"
        ]


class BareSleeper:
    """A ``bench.bare_actors.sleep_probe`` message, which pushes each start's time."""

    name = "bare dramatiq"

    def __init__(self, redis_url: str, client: redis.Redis) -> None:
        self.broker = bare_broker(redis_url)
        self.client = client

    def submit(self, seconds: float) -> str:
        token = uuid.uuid4().hex
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=QUEUE,
            actor_name="sleep_probe",
            args=(token, seconds),
            kwargs={},
            options={},
        )
        self.broker.enqueue(message)
        return token

    def starts(self, token: str) -> list[Start]:
        pushed = self.client.lrange(STARTS_KEY.format(token=token), 0, -1)
        return [{"at_s": int(ms) / 1000} for ms in pushed]


def wait_polling(client: redis.Redis, group: ProcessGroup, count: int) -> None:
    """Until ``count`` worker processes have polled their queues (``group`` must live)."""

    def polling() -> bool:
        return int(client.zcard(BROKER_HEARTBEATS)) >= count

    wait_for(f"{group.name} polling", polling, STARTUP_TIMEOUT, alive=group.check_alive)


def wait_starts(
    sleeper: Sleeper, token: str, count: int, timeout: float, alive: Callable[[], None]
) -> list[Start]:
    """The job's starts once there are ``count`` of them; ``TimedOut`` after ``timeout``."""

    def enough() -> list[Start] | None:
        found = sleeper.starts(token)
        return found if len(found) >= count else None

    return wait_for(f"start {count}", enough, timeout, alive=alive, interval=HISTORY_POLL)


def started_again(
    sleeper: Sleeper, token: str, killed_at: float, timeout: float, alive: Callable[[], None]
) -> dict[str, Any]:
    """Seconds from ``killed_at`` (epoch) to the job's second start, or "not recovered"."""
    try:
        starts = wait_starts(sleeper, token, 2, timeout, alive)
    except TimedOut:
        return {"recovered": False, "timeout_s": timeout}
    return {
        "recovered": True,
        "seconds": starts[1]["at_s"] - killed_at,
        "observed_s": time.time() - killed_at,
        "timeout_s": timeout,
        "starts": starts[:2],
    }


def kill_worker_processes(supervisor: ProcessGroup) -> tuple[float, list[int]]:
    """SIGKILL every process below the supervisor (its Dramatiq process and that one's
    worker process), not the supervisor itself; the epoch time of the kill and the pids."""
    children = psutil.Process(supervisor.pid).children()
    victims = [p for child in children for p in (child, *child.children(recursive=True))]
    if not victims:
        raise RuntimeError(f"{supervisor.name} has no worker process to kill")
    killed_at = time.time()
    for victim in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.send_signal(signal.SIGKILL)
    psutil.wait_procs(victims, timeout=10)
    return killed_at, [victim.pid for victim in victims]


def kill_host(group: ProcessGroup) -> float:
    """SIGKILL the whole group (supervisor and workers at once); the epoch time of the kill."""
    assert group.process is not None
    killed_at = time.time()
    os.killpg(group.pid, signal.SIGKILL)
    group.process.wait(timeout=10)
    return killed_at


def runner_of(client: redis.Redis, job_id: str) -> psutil.Process:
    """The Jobcore worker process running ``job_id`` (its owner's presence names its pid)."""
    owner = client.hget(keys.job(job_id), "owner")
    pid = client.hget(keys.worker(owner.decode() if isinstance(owner, bytes) else owner), "pid")
    return psutil.Process(int(pid))


def worker_process_killed(
    sleeper: Sleeper,
    start_host: Callable[[str], ProcessGroup],
    client: redis.Redis,
    sleep: float,
    timeout: float,
) -> dict[str, Any]:
    """One supervisor with the bench's worker processes; the one running the job is
    SIGKILLed while the job sleeps (for bare Dramatiq, which has no supervisor, every process
    below the launcher); seconds until the job starts again."""
    host = start_host("host-a")
    try:
        wait_polling(client, host, 1)
        token = sleeper.submit(sleep)
        wait_starts(sleeper, token, 1, STARTUP_TIMEOUT, host.check_alive)
        if isinstance(sleeper, JobcoreSleeper):
            victim = runner_of(client, token)
            killed_at, pids = time.time(), [victim.pid]
            victim.send_signal(signal.SIGKILL)
        else:
            killed_at, pids = kill_worker_processes(host)
        result = started_again(sleeper, token, killed_at, timeout, host.check_alive)
        restarted = [p.pid for p in psutil.Process(host.pid).children()]
        return result | {"killed_pids": pids, "restarted_pids": restarted, "sleep_s": sleep}
    finally:
        host.stop()


def worker_host_lost(
    sleeper: Sleeper,
    start_host: Callable[[str], ProcessGroup],
    client: redis.Redis,
    sleep: float,
    timeout: float,
) -> dict[str, Any]:
    """Two hosts of one worker process each; the one running the job is SIGKILLed whole
    (supervisor included); seconds until the job starts again on the other.

    The second host starts once the job runs on the first, so which host runs it is known;
    it polls before the kill.
    """
    first = start_host("host-a")
    second: ProcessGroup | None = None
    try:
        wait_polling(client, first, 1)
        token = sleeper.submit(sleep)
        wait_starts(sleeper, token, 1, STARTUP_TIMEOUT, first.check_alive)
        second = start_host("host-b")
        wait_polling(client, second, 2)
        killed_at = kill_host(first)
        result = started_again(sleeper, token, killed_at, timeout, second.check_alive)
        return result | {"sleep_s": sleep}
    finally:
        if second is not None:
            second.stop()
        first.stop()
