"""Acknowledged means replicated (``JOBCORE_MIN_REPLICAS_ACK``): a new job, a side-effect
reservation and a job's end count only once a replica confirms them.

A primary and one replica of the test's own; pausing the replica (SIGSTOP) makes every
confirmation time out, as a lagging or cut-off replica would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
import redis
from conftest import TEST_PLUGINS, start_job, wait_until
from falcon import testing
from sentinel_cluster import SentinelCluster

from jobcore.clock import now_ms
from jobcore.errors import NotReplicated, SubmissionNotConfirmed
from jobcore.execution.effects import EffectGuard
from jobcore.intake.submission import SubmissionParser
from jobcore.model.catalogue import load_job_types
from jobcore.model.states import AttemptOutcome
from jobcore.runtime import Runtime, build_runtime
from jobcore.settings import Settings
from jobcore.store import keys, transitions
from jobcore_api.app import create_app
from jobcore_devstack.redis_server import RedisServer


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelCluster]:
    """A primary and one replica (no Sentinel: nothing fails over here)."""
    built = SentinelCluster(tmp_path_factory.mktemp("replicated"), replicas=1, sentinels=0)
    built.start()
    yield built
    built.stop()


@pytest.fixture(scope="module")
def acked(pair: SentinelCluster, settings: Settings) -> Runtime:
    own = replace(settings, redis_url=pair.primary.url, min_replicas_ack=1)
    return build_runtime(own, job_types=load_job_types(TEST_PLUGINS))


@contextmanager
def replica_paused(pair: SentinelCluster) -> Iterator[RedisServer]:
    replica = pair.replicas[0]
    pair.pause(replica)
    try:
        yield replica
    finally:
        pair.resume(replica)
        SentinelCluster.wait_replicas_online(pair.primary, 1)


def submit(runtime: Runtime, key: str | None = None) -> str:
    body: dict = {"type": "dummy", "payload": {}}
    if key:
        body["idempotencyKey"] = key
    parser = SubmissionParser(runtime.job_types)
    return runtime.jobs.submit(parser.parse(body, now_ms=int(time.time() * 1000))).job_id


def on_replica(pair: SentinelCluster, key: str) -> bool:
    return bool(redis.Redis(port=pair.replicas[0].port).exists(key))


def test_an_accepted_job_is_on_the_replica_when_submit_returns(pair, acked):
    for _ in range(20):
        job_id = submit(acked)
        assert on_replica(pair, keys.job(job_id))


def test_an_unconfirmed_submission_is_a_503_saying_the_job_may_exist(pair, acked):
    api = testing.TestClient(create_app(acked.settings, acked))
    body = {"type": "dummy", "payload": {}}
    with replica_paused(pair):
        started = time.monotonic()
        answer = api.simulate_post("/jobs", json=body, headers={"Idempotency-Key": "ack-1"})
        elapsed = time.monotonic() - started
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["Retry-After"]) >= 1
    assert answer.json["title"] == "Submission not confirmed"
    assert answer.json["mayExist"] is True
    assert "same idempotency key" in answer.json["detail"]
    assert elapsed < 1.0, f"answered after {elapsed:.2f} s"
    # The replica caught up: the same key now gets the job that was written.
    again = api.simulate_post("/jobs", json=body, headers={"Idempotency-Key": "ack-1"})
    assert again.status_code == 200 and again.json["jobId"] == answer.json["jobId"]


def test_a_replay_is_confirmed_too_so_it_never_names_an_unreplicated_job(pair, acked):
    """The replay itself writes nothing: the mark written before WAIT makes WAIT cover the
    job it names."""
    submit(acked, key="ack-replay")
    with replica_paused(pair), pytest.raises(SubmissionNotConfirmed):
        submit(acked, key="ack-replay")


def test_without_replica_acknowledgement_no_wait_is_sent(pair, settings):
    plain = build_runtime(replace(settings, redis_url=pair.primary.url))
    client = redis.Redis(port=pair.primary.port, decode_responses=True)
    client.config_resetstat()
    with replica_paused(pair):
        submit(plain)
    assert "cmdstat_wait" not in client.info("commandstats")


def test_an_effect_waits_for_its_reservation_to_be_confirmed(pair, acked):
    job_id = submit(acked)
    guard = EffectGuard(acked.executor, job_id, attempt=1)
    ran: list[float] = []
    outcome: list[str] = []

    def send() -> str:
        ran.append(time.monotonic())
        return "sent"

    with replica_paused(pair):
        worker = threading.Thread(target=lambda: outcome.append(guard.run_once("mail", send)))
        worker.start()
        time.sleep(1.5)
        assert ran == [], "the effect ran before a replica had its reservation"
    worker.join(timeout=15)
    # Its own earlier, unconfirmed reservation (same token) was recognised as its own.
    assert ran and outcome == ["sent"]
    wait_until(
        lambda: (
            b'"done"'
            in (
                redis.Redis(port=pair.replicas[0].port).hget(keys.job_effects(job_id), "mail")
                or b""
            )
        ),
        message="the done record on the replica",
    )


def test_an_unconfirmed_end_of_an_attempt_raises_and_keeps_what_it_wrote(pair, acked):
    job_id = submit(acked)
    store = acked.store
    start_job(acked, job_id, "w-ack")
    with replica_paused(pair), pytest.raises(NotReplicated) as unconfirmed:
        store.finish(job_id, 1, "w-ack", AttemptOutcome.RETRYING, error="boom", next_attempt_at=0)
    assert unconfirmed.value.reply.recorded
    # The script sent the retry's message with the end: trying again changes nothing.
    assert acked.client.hexists(keys.messages("default"), f"{job_id}.2")
    assert store.finish(job_id, 1, "w-ack", AttemptOutcome.RETRYING, error="boom").recorded is False
    assert acked.client.lrange(keys.ready_queue("default"), 0, -1).count(f"{job_id}.2") == 1


def test_ends_written_together_share_one_confirmation_and_count_only_once_confirmed(pair, acked):
    ids = [submit(acked) for _ in range(3)]
    for job_id in ids:
        start_job(acked, job_id, "w-ack")

    def ends() -> list:
        return [
            transitions.finish(job_id, 1, "w-ack", now_ms(), AttemptOutcome.COMPLETED, attempt=1)
            for job_id in ids
        ]

    with replica_paused(pair), pytest.raises(NotReplicated):
        acked.executor.run_many(ends())
    # Written, and trying again (as the end writer does) changes nothing.
    assert [r.recorded for r in acked.executor.run_many(ends())] == [False] * 3
    assert all(on_replica(pair, keys.job(job_id)) for job_id in ids)
    assert {acked.store.get(job_id).state for job_id in ids} == {"completed"}


def test_a_confirmed_script_is_loaded_again_when_redis_forgot_it(pair, acked):
    redis.Redis(port=pair.primary.port).script_flush()
    job_id = submit(acked)
    assert on_replica(pair, keys.job(job_id))
