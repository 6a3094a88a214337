"""The slow fault tier (``make test-faults``): kill workers and Redis, count the damage.

Each test prints Jepsen-style counts: ``lost`` (must be 0), ``duplicate effects`` (must
be 0), ``duplicate executions`` (reported), ``failed by design`` (reported, with reasons).
"""

from __future__ import annotations

import collections
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from conftest import FAST_ENV, ApiProcess, WorkerProcess, service_env, wait_for_state, wait_until

from jobcore.intake.submission import SubmissionParser
from jobcore.model.catalogue import load_job_types
from jobcore.runtime import Runtime, build_runtime
from jobcore.settings import ENV, Settings
from jobcore.store import keys
from jobcore_devstack.redis_server import RedisServer, free_port
from jobcore_devstack.smtp_sink import SmtpSink

pytestmark = pytest.mark.faults

#: The shipped defaults: FAST_ENV's overrides removed.
SHIPPED = {name: "" for name in FAST_ENV}


@dataclass
class Stack:
    """A private Redis, SMTP sink and environment for one fault test."""

    redis: RedisServer
    sink: SmtpSink
    env: dict[str, str]
    tmp: Path
    runtime: Runtime
    workers: list[WorkerProcess]

    def worker(self, *args: str, name: str = "worker", **env: str) -> WorkerProcess:
        log = self.tmp / f"{name}-{len(self.workers)}.log"
        process = WorkerProcess(dict(self.env, **env), log, *args).start()
        self.workers.append(process)
        return process

    def submit(self, body: dict, **namespace: str) -> str:
        parser = SubmissionParser(self.runtime.job_types)
        submission = parser.parse(body, now_ms=int(time.time() * 1000))
        return self.runtime.jobs.submit(submission, **namespace).job_id

    def started(self, job_id: str) -> int:
        return sum(e["event"] == "started" for e in self.runtime.store.events(job_id))


@contextmanager
def make_stack(tmp: Path, **overrides: str) -> Iterator[Stack]:
    redis_server = RedisServer(tmp / "redis").start()
    sink = SmtpSink(free_port()).start()
    env = service_env(redis_server.url, sink.url, tmp)
    for name, value in overrides.items():
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    settings = Settings.from_env({k: v for k, v in env.items() if k in ENV.values()})
    runtime = build_runtime(settings, job_types=load_job_types("job_plugins"))
    stack = Stack(redis_server, sink, env, tmp, runtime, [])
    try:
        yield stack
    finally:
        for process in stack.workers:
            process.stop(timeout=20)
        sink.stop()
        redis_server.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with make_stack(tmp_path) as built:
        yield built


def report(**counts: object) -> None:
    print("\n" + "  ".join(f"{name.replace('_', ' ')}={value}" for name, value in counts.items()))


def test_a_sigkilled_workers_job_runs_again_within_30_s_with_shipped_defaults(tmp_path):
    with make_stack(tmp_path, **SHIPPED) as stack:
        first = stack.worker("--processes", "1", "--threads", "2")
        job_id = stack.submit({"type": "dummy", "payload": {"sleepSeconds": 3}})
        wait_for_state(stack.runtime, job_id, "active")
        first.signal(signal.SIGKILL)
        first.process.wait()
        killed_at = time.monotonic()
        stack.worker("--processes", "1", "--threads", "2")
        wait_until(lambda: stack.started(job_id) == 2, timeout=40, message="second start")
        restarted_after = time.monotonic() - killed_at
        record = wait_for_state(stack.runtime, job_id, "completed", timeout=20)
        report(
            lost=0,
            duplicate_executions=stack.started(job_id) - 1,
            restarted_after_s=round(restarted_after, 1),
        )
        assert restarted_after < 30
        assert record.attempts == 1 and record.deliveries == 2


def test_a_worker_process_sigkilled_under_its_supervisor_is_released_within_2_s(stack):
    supervised = stack.worker("--processes", "2", "--threads", "2")
    job_id = stack.submit({"type": "dummy", "payload": {"sleepSeconds": 3}})
    wait_for_state(stack.runtime, job_id, "active")
    # The process running it (below Dramatiq's launcher, which notices its death late).
    client = stack.runtime.client
    owner = client.hget(keys.job(job_id), "owner")
    os.kill(int(client.hget(keys.worker(owner), "pid")), signal.SIGKILL)
    killed_at = time.monotonic()
    wait_until(lambda: stack.started(job_id) == 2, timeout=20, message="second start")
    restarted_after = time.monotonic() - killed_at
    record = wait_for_state(stack.runtime, job_id, "completed", timeout=20)
    report(
        lost=0,
        duplicate_executions=stack.started(job_id) - 1,
        restarted_after_s=round(restarted_after, 2),
    )
    assert restarted_after < 2
    assert record.attempts == 1 and record.deliveries == 2
    assert "released 1 job(s) of worker process" in supervised.log()


def test_sigterm_requeues_interruptible_work_and_leaves_nothing_active(stack):
    worker = stack.worker("--processes", "1", "--threads", "2")
    long_job = stack.submit({"type": "dummy", "payload": {"sleepSeconds": 20}})
    mail_job = stack.submit(
        {"type": "email", "payload": {"to": "a@example.com", "subject": "s", "body": "b"}}
    )
    wait_for_state(stack.runtime, long_job, "active")
    worker.stop(timeout=30)
    assert worker.process.returncode is not None
    assert stack.runtime.store.get(long_job).state == "waiting"
    assert stack.runtime.store.get(mail_job).state == "completed"
    assert stack.runtime.store.owned_ids(100) == []
    events = [e["event"] for e in stack.runtime.store.events(long_job)]
    assert events[-1] == "requeued"
    stack.worker("--processes", "1", "--threads", "2")
    record = wait_for_state(stack.runtime, long_job, "active", "completed", timeout=20)
    assert record.attempts == 1  # the interrupted attempt was given back


def test_a_job_that_kills_its_worker_every_time_fails_at_the_delivery_cap(stack):
    stack.worker("--processes", "1", "--threads", "1")
    job_id = stack.submit({"type": "test-kill-worker", "payload": {}, "maxAttempts": 1})
    # Six crashes, each followed by a restart pause (doubling) and a recovery.
    record = wait_for_state(stack.runtime, job_id, "failed", timeout=300)
    report(lost=0, deliveries=record.deliveries, failed_by_design=1)
    assert "delivery cap reached" in record.failed_reason
    assert record.deliveries == 6 and record.attempts == 0


def test_a_redis_restart_loses_no_accepted_job(stack):
    ids = [stack.submit({"type": "dummy", "payload": {"echo": n}}) for n in range(150)]
    ids += [
        stack.submit({"type": "dummy", "payload": {"echo": n}, "delaySeconds": 2})
        for n in range(50)
    ]
    stack.redis.kill()
    stack.redis.start()
    stack.worker("--processes", "2", "--threads", "4")
    for job_id in ids:
        wait_for_state(stack.runtime, job_id, "completed", timeout=60)
    twice = sum(stack.started(j) > 1 for j in ids)
    report(lost=0, duplicate_executions=twice)
    assert twice == 0


def test_a_delayed_job_survives_a_redis_restart_while_it_waits(stack):
    stack.worker("--processes", "1", "--threads", "2")
    job_id = stack.submit({"type": "dummy", "payload": {}, "delaySeconds": 3})
    # It waits in the due set, not in a worker's memory (Dramatiq #527).
    time.sleep(0.5)
    assert stack.runtime.client.zscore(keys.DUE, job_id) is not None
    assert stack.runtime.client.llen(keys.ready_queue(keys.delay_queue_name("default"))) == 0
    stack.redis.kill()
    stack.redis.start()
    record = wait_for_state(stack.runtime, job_id, "completed", timeout=40)
    report(lost=0, duplicate_executions=stack.started(job_id) - 1)
    assert stack.started(job_id) == 1 and record.attempts == 1


def test_a_job_holding_the_gil_past_the_broker_heartbeat_runs_once(tmp_path):
    overrides = {
        "JOBCORE_OWNER_TTL": "12s",
        "JOBCORE_BROKER_HEARTBEAT_TIMEOUT": "2s",
    }
    with make_stack(tmp_path, **overrides) as stack:
        stack.worker("--processes", "1", "--threads", "1", name="holder")
        job_id = stack.submit({"type": "test-hold-gil", "payload": {"seconds": 6}})
        # Claimed, and begun as far as the process knows: the hold keeps its start recorder
        # (like its heartbeat) from writing until it ends.
        wait_for_state(stack.runtime, job_id, "claimed", "active")
        other = stack.worker("--processes", "1", "--threads", "2", name="other")
        record = wait_for_state(stack.runtime, job_id, "completed", timeout=30)
        time.sleep(1)
        report(lost=0, duplicate_executions=stack.started(job_id) - 1)
        assert stack.started(job_id) == 1 and record.attempts == 1
        # The other worker was handed the message while the holder held the GIL.
        assert '"busy"' in other.log(), "the redelivery this test guards against never happened"


def test_mixed_jobs_survive_worker_kills_and_a_redis_restart(stack):
    """≥ 500 jobs; 3 worker SIGKILLs and 1 Redis SIGKILL while they run; count the damage."""
    api = ApiProcess(stack.env, stack.tmp / "api.log").start()
    base = api.url
    workers = [stack.worker("--processes", "1", "--threads", "4", name=f"w{i}") for i in range(2)]

    accepted: dict[str, str] = {}
    kinds: dict[str, str] = {}
    answers_503 = 0

    def submit_all() -> None:
        nonlocal answers_503
        session = requests.Session()
        for n in range(520):
            key = f"mixed-{n}-{uuid.uuid4().hex[:6]}"
            if n % 5 in (0, 1):
                body = {
                    "type": "email",
                    "payload": {"to": f"u{n}@example.com", "subject": f"n{n}", "body": "hello"},
                }
            else:
                body = {
                    "type": "dummy",
                    "payload": {"failTimes": n % 3, "sleepSeconds": 0.05},
                    "maxAttempts": 4,
                    "backoff": {"type": "fixed", "delayMs": 300},
                }
            time.sleep(0.02)  # spread submissions over the faults below
            while True:  # a client that got a 503 resubmits with the same key
                try:
                    answer = session.post(
                        f"{base}/jobs", json=body, timeout=5, headers={"Idempotency-Key": key}
                    )
                except requests.RequestException:
                    time.sleep(0.2)
                    continue
                if answer.status_code == 503:
                    answers_503 += 1
                    time.sleep(float(answer.headers.get("Retry-After", "1")))
                    continue
                assert answer.status_code in (200, 202), answer.text
                accepted[key] = answer.json()["jobId"]
                kinds[answer.json()["jobId"]] = body["type"]
                break

    submitter = threading.Thread(target=submit_all)
    submitter.start()
    for round_number in range(3):
        time.sleep(3)
        victim = workers[round_number % 2]
        victim.signal(signal.SIGKILL)
        victim.process.wait()
        workers[round_number % 2] = stack.worker(
            "--processes", "1", "--threads", "4", name=f"w{round_number}-again"
        )
        if round_number == 1:
            stack.redis.kill()
            time.sleep(1)
            stack.redis.start()
    submitter.join(timeout=240)
    assert not submitter.is_alive()

    job_ids = list(accepted.values())
    assert len(job_ids) == 520 == len(set(job_ids))
    store = stack.runtime.store

    def all_terminal() -> bool:
        return all(store.get(j).state in ("completed", "failed") for j in job_ids)

    wait_until(all_terminal, timeout=240, interval=1, message="every job to finish")
    mails = collections.Counter(m.job_id for m in stack.sink.messages)
    records = {j: store.get(j) for j in job_ids}
    completed_mail = [
        j for j, r in records.items() if kinds[j] == "email" and r.state == "completed"
    ]
    failed = {j: r.failed_reason for j, r in records.items() if r.state == "failed"}
    reasons = collections.Counter((reason or "").split(":")[0] for reason in failed.values())
    duplicate_effects = sum(count > 1 for count in mails.values())
    duplicate_executions = sum(
        sum(e["event"] == "started" for e in store.events(j)) > records[j].attempts for j in job_ids
    )
    report(
        accepted=len(job_ids),
        lost=0,
        duplicate_effects=duplicate_effects,
        duplicate_executions=duplicate_executions,
        failed_by_design=len(failed),
        reasons=dict(reasons),
        answers_503=answers_503,
    )
    assert duplicate_effects == 0
    assert all(mails[j] == 1 for j in completed_mail)
    for reason in failed.values():
        assert reason.startswith(("needs a human check", "delivery cap reached")), reason
    api.stop()


def test_redis_pauses_while_workers_claim_leave_no_job_claimed(stack):
    """A claim that times out while Redis is paused may still run when it resumes: the
    process's next claim gives those jobs back, so none stays claimed by a live worker."""
    stack.worker("--processes", "2", "--threads", "4")
    ids = [stack.submit({"type": "dummy", "payload": {"sleepSeconds": 0.2}}) for _ in range(160)]
    assert stack.redis.process is not None
    pid = stack.redis.process.pid
    for _ in range(3):
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(0.8)  # past the claim's 0.5 s timeout
        finally:
            os.kill(pid, signal.SIGCONT)
        time.sleep(1.0)
    for job_id in ids:
        wait_for_state(stack.runtime, job_id, "completed", timeout=60)
    twice = sum(stack.started(j) > 1 for j in ids)
    report(lost=0, duplicate_executions=twice)
