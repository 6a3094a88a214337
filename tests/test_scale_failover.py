"""A Redis failover that loses no accepted job (``make test-scale``).

A primary, two replicas and three Sentinels on the shipped ``deploy/sentinel.conf``; the API
(gunicorn) and a worker (2 processes) reach them through ``REDIS_URL=redis+sentinel://...``.
Clients submit over 2,000 jobs over HTTP, each with an idempotency key, retrying a ``503``
with the same key; meanwhile the replicas are paused (SIGSTOP, so replication lags for real
on loopback), the primary is SIGKILLed, and the replicas resume (SIGCONT). Nothing is
restarted by hand: the Sentinels promote a replica and every process follows.

Every ``202``/``200`` is recorded; afterwards each acknowledged job must exist and end
terminal. With ``JOBCORE_MIN_REPLICAS_ACK=1``: lost 0 and duplicate e-mails 0. With 0 (a
failover as usually configured) the same run prints the loss it saw, which must be more
than none: the test can see a loss. Both print the API's ``503`` window.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from conftest import ApiProcess, WorkerProcess, service_env, wait_until
from sentinel_cluster import SentinelCluster, shipped_sentinel_setting, wait_for_new_primary

from jobcore.errors import JobNotFound, StoreUnavailable
from jobcore.settings import Settings
from jobcore.store.connection import connect
from jobcore.store.executor import Executor
from jobcore.store.record_store import RecordStore
from jobcore_devstack.redis_server import free_port
from jobcore_devstack.smtp_sink import SmtpSink

pytestmark = pytest.mark.scale

#: How long a silent worker still counts as alive: the shipped values, which outlast a
#: failover (with the tests' 3 s owner TTL, jobs running through the failover would be taken
#: for orphans and started again). Sweeps stay fast, so the counts settle sooner.
LIVENESS = {
    "JOBCORE_OWNER_TTL": "15s",
    "JOBCORE_HEARTBEAT_INTERVAL": "2s",
    "JOBCORE_BROKER_HEARTBEAT_TIMEOUT": "10s",
}
#: Jobs submitted per run, and the clients submitting them as fast as the API answers.
JOBS, CLIENTS = 2100, 6
#: Jobs each client keeps until the primary is killed: load keeps coming through the failover.
HELD_BACK = 60
#: Accepted jobs before the replicas are paused.
PAUSE_AFTER = 700
#: How long the replicas stay paused before the primary is killed, in seconds.
PAUSE_SECONDS = 5.0
#: The API's 503 window the shipped Sentinel settings aim at, in seconds (issue 18).
TARGET_WINDOW = 10.0
#: Each e-mail's body (30 KB): while the replicas are paused, the primary writes more than
#: the kernel's socket buffers toward them hold (megabytes on loopback), so the rest of the
#: replication stream is only in the primary's memory when it dies.
BODY = "Your job has been processed successfully. " * 700


@dataclass
class Load:
    """What the clients saw: every acknowledged job, every answer's time and status."""

    accepted: dict[str, str] = field(default_factory=dict)  # idempotency key → job id
    kinds: dict[str, str] = field(default_factory=dict)  # job id → type
    answers: list[tuple[float, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    primary_killed: threading.Event = field(default_factory=threading.Event)

    def note(self, status: int) -> None:
        with self.lock:
            self.answers.append((time.monotonic(), status))


def body_of(n: int) -> dict:
    if n % 3 == 0:
        return {
            "type": "email",
            "payload": {"to": f"u{n}@example.com", "subject": f"n{n}", "body": BODY},
        }
    return {
        "type": "dummy",
        "payload": {"failTimes": n % 3, "sleepSeconds": 0.02},
        "maxAttempts": 4,
        "backoff": {"type": "fixed", "delayMs": 200},
    }


def client(api_url: str, numbers: range, load: Load, run: str) -> None:
    session = requests.Session()
    for n in numbers:
        if n >= numbers.stop - HELD_BACK:
            load.primary_killed.wait()
        key = f"{run}-{n}-{uuid.uuid4().hex[:8]}"
        body = body_of(n)
        while True:  # a client that got a 503 (or nothing) retries with the same key
            try:
                answer = session.post(
                    api_url + "/jobs", json=body, headers={"Idempotency-Key": key}, timeout=10
                )
            except requests.RequestException:
                load.note(0)
                time.sleep(0.2)
                continue
            load.note(answer.status_code)
            if answer.status_code == 503:
                time.sleep(min(float(answer.headers.get("Retry-After", "1")), 0.5))
                continue
            assert answer.status_code in (200, 202), answer.text
            job_id = answer.json()["jobId"]
            with load.lock:
                load.accepted[key] = job_id
                load.kinds[job_id] = body["type"]
            break


def state_of(store: RecordStore, job_id: str) -> str:
    try:
        return store.get(job_id).state
    except JobNotFound:
        return "missing"
    except StoreUnavailable:
        return "unknown"


#: Jobs still unfinished this long after the last one finished are lost (an orphan is
#: recovered within the owner TTL, 15 s, and a sweep).
SETTLED_AFTER = 30.0


def settle(unfinished: Callable[[], list[str]], longest: float = 240.0) -> list[str]:
    """Wait until every job finished or the unfinished ones stop finishing; those left."""
    started = changed = time.monotonic()
    left = unfinished()
    while left and time.monotonic() - changed < SETTLED_AFTER:
        if time.monotonic() - started > longest:
            break
        time.sleep(2)
        now_left = unfinished()
        if len(now_left) != len(left):
            changed = time.monotonic()
        left = now_left
    return left


def fail_over_under_load(tmp: Path, min_replicas_ack: int) -> dict:
    run = f"ack{min_replicas_ack}"
    cluster = SentinelCluster(tmp / "cluster", replicas=2, sentinels=3).start()
    sink = SmtpSink(free_port()).start()
    acks = {"JOBCORE_MIN_REPLICAS_ACK": str(min_replicas_ack)}
    env = service_env(cluster.url, sink.url, tmp, **acks, **LIVENESS)
    api = worker = None
    load = Load()
    try:
        api = ApiProcess(env, tmp / f"{run}-api.log", workers=2).start()
        worker = WorkerProcess(env, tmp / f"{run}-worker.log", "--processes", "2", "--threads", "8")
        worker.start()
        store = RecordStore(Executor(connect(Settings(redis_url=cluster.url, redis_timeout=2))))
        share = JOBS // CLIENTS
        clients = [
            threading.Thread(
                target=client,
                args=(api.url, range(i * share, (i + 1) * share), load, run),
                daemon=True,
            )
            for i in range(CLIENTS)
        ]
        for thread in clients:
            thread.start()
        wait_until(lambda: len(load.accepted) >= PAUSE_AFTER, timeout=120, message="load under way")
        old_primary = cluster.primary
        for replica in cluster.replicas:
            cluster.pause(replica)
        paused_at = time.monotonic()
        time.sleep(PAUSE_SECONDS)
        old_primary.kill()
        killed_at = time.monotonic()
        load.primary_killed.set()
        # Answers to requests sent once the pause had begun (a request takes well under 1 s).
        accepted_while_paused = sum(
            1
            for t, status in load.answers
            if paused_at + 1.0 <= t < killed_at and status in (200, 202)
        )
        for replica in cluster.replicas:
            cluster.resume(replica)
        new_port = wait_for_new_primary(cluster, old_primary.port)
        promoted_after = time.monotonic() - killed_at
        for thread in clients:
            thread.join(timeout=300)
        assert not any(thread.is_alive() for thread in clients), "clients still submitting"
        job_ids = list(load.accepted.values())

        def unfinished() -> list[str]:
            return [j for j in job_ids if state_of(store, j) not in ("completed", "failed")]

        left = settle(unfinished)
        missing = [j for j in left if state_of(store, j) == "missing"]
        mails = collections.Counter(m.job_id for m in sink.messages)
        after_kill = [(t, s) for t, s in load.answers if t >= killed_at]
        first_ok = next((t for t, s in after_kill if s in (200, 202)), None)
        refused_after_kill = [t for t, s in after_kill if s != 200 and s != 202]
        counts = {
            "acked": len(job_ids),
            "distinct": len(set(job_ids)),
            "lost": len(left),
            "lost_missing": len(missing),
            "lost_stuck": len(left) - len(missing),
            "duplicate_emails": sum(c > 1 for c in mails.values()),
            "emails_sent": sum(mails.values()),
            "acked_while_replicas_paused": accepted_while_paused,
            "answers_503": sum(1 for _, s in load.answers if s == 503),
            "window_503_s": round(first_ok - killed_at, 1) if first_ok else None,
            "last_refusal_after_kill_s": (
                round(max(refused_after_kill) - killed_at, 1) if refused_after_kill else 0
            ),
            "promoted_after_s": round(promoted_after, 1),
            "new_primary_port": new_port,
        }
        failed = collections.Counter(
            (store.get(j).failed_reason or "").split(":")[0]
            for j in job_ids
            if j not in left and store.get(j).state == "failed"
        )
        counts["failed_by_design"] = dict(failed)
        print(
            f"\n[failover, JOBCORE_MIN_REPLICAS_ACK={min_replicas_ack}] "
            + " ".join(f"{k}={v}" for k, v in counts.items())
            + f" (down-after-milliseconds={shipped_sentinel_setting('down-after-milliseconds')},"
            f" failover-timeout={shipped_sentinel_setting('failover-timeout')})"
        )
        return counts
    finally:
        load.primary_killed.set()  # no client waits forever
        if worker:
            worker.stop(timeout=30)
        if api:
            api.stop()
        sink.stop()
        cluster.stop()


def test_with_replica_acknowledgement_a_failover_loses_no_accepted_job(tmp_path):
    counts = fail_over_under_load(tmp_path, min_replicas_ack=1)
    assert counts["acked"] == counts["distinct"] >= 2000
    assert counts["lost"] == 0
    assert counts["duplicate_emails"] == 0
    assert counts["acked_while_replicas_paused"] == 0  # nothing counts before a replica has it
    assert counts["window_503_s"] is not None and counts["window_503_s"] <= TARGET_WINDOW
    for reason in counts["failed_by_design"]:
        assert reason in ("needs a human check", "delivery cap reached"), reason


def test_without_it_the_same_failover_loses_acknowledged_jobs(tmp_path):
    """The control run: as usually configured, a failover loses writes the old primary
    acknowledged; the test must be able to see that, or its zero above proves nothing."""
    counts = fail_over_under_load(tmp_path, min_replicas_ack=0)
    assert counts["acked"] == counts["distinct"] >= 2000
    assert counts["acked_while_replicas_paused"] > 0
    assert counts["lost"] > 0, "no loss seen: the pause did not make replication lag"
