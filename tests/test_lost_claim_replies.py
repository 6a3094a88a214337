"""A claim whose reply never reached its worker process (the call timed out while Redis was
slow, yet Redis ran it): the process's next claim gives those messages back, and never one
it did receive."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import new_job

from jobcore.broker import job_message
from jobcore.clock import now_ms
from jobcore.jobs import new_job_id
from jobcore.runtime import Runtime
from jobcore.store import keys, transitions
from jobcore.store.transitions import ReadyMessage

WORKER = "lost-claim-test-worker"


@pytest.fixture(autouse=True)
def worker_present(runtime: Runtime) -> Iterator[None]:
    """The worker is alive as far as Redis knows, so no sweeper recovers its claims."""
    runtime.client.hset(keys.worker(WORKER), "id", WORKER)
    runtime.client.pexpire(keys.worker(WORKER), 60_000)
    yield
    runtime.client.delete(keys.worker(WORKER))


def _waiting_job(runtime: Runtime, queue: str) -> str:
    job = new_job(queue)
    message_id = f"{job.id}.1"
    body = job_message(job.id, "dummy", queue, 1, redis_message_id=message_id).encode()
    ready = ReadyMessage(
        keys.ready_queue(queue), keys.messages(queue), message_id, body, keys.wake(queue)
    )
    runtime.store.create(job, message=ready)
    return job.id


def _claim(runtime: Runtime, queue: str, count: int, token: str, received: str = ""):
    return runtime.executor.run(
        transitions.claim(
            queue,
            WORKER,
            count,
            now_ms(),
            heartbeat_timeout_ms=60_000,
            maintenance=False,
            dead_message_ttl_ms=60_000,
            token=token,
            received=received,
        )
    )


@pytest.fixture
def queue() -> str:
    return f"lost-claims-{new_job_id()}"


def test_the_next_claim_gives_back_what_a_claim_without_a_reply_took(runtime, queue):
    job_id = _waiting_job(runtime, queue)
    # The reply of this claim "never arrives": the process goes on without its message.
    assert len(_claim(runtime, queue, 1, "p-1").fetched) == 1
    assert runtime.store.get(job_id).state == "claimed"
    # Its next claim (a heartbeat claim of nothing) says which claim it last received: none,
    # so a token no claim has.
    _claim(runtime, queue, 0, "p-2", received="p-0")
    assert runtime.store.get(job_id).state == "waiting"
    assert runtime.client.lrange(keys.ready_queue(queue), 0, -1) == [f"{job_id}.1"]
    assert runtime.client.smembers(keys.acks(WORKER, queue)) == set()
    (again,) = _claim(runtime, queue, 1, "p-3").fetched
    assert again.claim is not None and again.claim.attempt == 1
    assert runtime.store.get(job_id).state == "claimed"


def test_a_claim_the_process_received_is_never_given_back(runtime, queue):
    held = _waiting_job(runtime, queue)
    assert len(_claim(runtime, queue, 1, "p-1").fetched) == 1  # received: held in memory
    # Claim p-2 timed out before Redis ran it; the next one settles it.
    assert _claim(runtime, queue, 0, "p-3", received="p-1").fetched == []
    assert runtime.store.get(held).state == "claimed"
    assert runtime.client.sismember(keys.acks(WORKER, queue), f"{held}.1")


def test_a_received_claim_of_nothing_forgets_the_one_before(runtime, queue):
    held = _waiting_job(runtime, queue)
    assert len(_claim(runtime, queue, 1, "p-1").fetched) == 1
    # Received, and it took nothing: the last claim that ran is this one.
    assert _claim(runtime, queue, 1, "p-2").fetched == []
    # A later claim's reply is lost; settling it must not give back p-1's message.
    _claim(runtime, queue, 0, "p-4", received="p-2")
    assert runtime.store.get(held).state == "claimed"


def test_a_dead_process_leaves_no_remembered_claim(runtime, queue):
    job_id = _waiting_job(runtime, queue)
    assert len(_claim(runtime, queue, 1, "p-1").fetched) == 1
    assert runtime.client.exists(keys.last_claim(WORKER, queue))
    assert job_id in runtime.store.recover_lost(WORKER)
    assert not runtime.client.exists(keys.last_claim(WORKER, queue))
