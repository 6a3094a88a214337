"""The lifecycle table (``jobcore.model.lifecycle``) driven cell by cell against the real
scripts on a real Redis: every operation from every state it names leads to its state, adds
its history event, and leaves the job in exactly one index and the due set as it says."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import new_job

from jobcore.broker import job_message
from jobcore.clock import now_ms
from jobcore.errors import JobNotFound
from jobcore.jobs import new_job_id
from jobcore.model.lifecycle import DELETED, SAME, TRANSITIONS, DueSet, Operation, Transition
from jobcore.model.states import ALL_STATES, AttemptOutcome, State
from jobcore.runtime import Runtime
from jobcore.store import keys, transitions
from jobcore.store.retention import RetentionPruner
from jobcore.store.transitions import ReadyMessage

WORKER = "lifecycle-test-worker"  # no presence key: as far as Redis knows, it is gone
OTHER_WORKER = "lifecycle-test-worker-2"
JOB_TYPE = "dummy"
README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(autouse=True)
def worker_present(runtime: Runtime) -> Iterator[None]:
    """``WORKER`` is present while a cell runs, so the running worker's sweeper does not
    recover this test's jobs as a lost host's; cells that need it gone remove it."""
    runtime.client.hset(keys.worker(WORKER), "id", WORKER)
    runtime.client.pexpire(keys.worker(WORKER), 60_000)
    yield
    runtime.client.delete(keys.worker(WORKER))


def _queue(job_id: str) -> str:
    """Each job of this test has a queue of its own, so claims fetch only its messages."""
    return f"lifecycle-{job_id}"


def _message(job_id: str, generation: int) -> ReadyMessage:
    """The job's message for ``generation``, as the scripts write it."""
    queue, message_id = _queue(job_id), f"{job_id}.{generation}"
    body = job_message(job_id, JOB_TYPE, queue, generation, redis_message_id=message_id)
    return ReadyMessage(keys.ready_queue(queue), keys.messages(queue), message_id, body.encode())


def _new(runtime: Runtime, *, delayed: bool = False) -> str:
    """A new job: an immediate one written with its ready-queue message, or a delayed one."""
    job_id = new_job_id()
    job = new_job(_queue(job_id), job_id=job_id, job_type=JOB_TYPE, delayed=delayed)
    runtime.store.create(job, message=None if delayed else _message(job_id, 1))
    return job_id


def _generation(runtime: Runtime, job_id: str) -> int:
    return runtime.store.get(job_id).generation


def _push(runtime: Runtime, job_id: str, generation: int | None = None) -> None:
    """Put a message for the job on its queue (a redelivery, or a duplicate)."""
    message = _message(job_id, generation or _generation(runtime, job_id))
    runtime.client.hset(message.messages_key, message.message_id, message.body)
    runtime.client.rpush(message.queue_key, message.message_id)


def _claim(runtime: Runtime, job_id: str, worker: str = WORKER) -> transitions.Claimed:
    return runtime.executor.run(
        transitions.claim(
            _queue(job_id),
            worker,
            10,
            now_ms(),
            heartbeat_timeout_ms=10_000,
            maintenance=False,
            dead_message_ttl_ms=60_000,
        )
    )


def _finish(runtime: Runtime, job_id: str, outcome: AttemptOutcome, **details: object) -> None:
    assert runtime.store.finish(
        job_id, _generation(runtime, job_id), WORKER, outcome, attempt=1, **details
    ).recorded


def _later() -> int:
    """A retry's time far enough ahead that it waits in the due set."""
    return now_ms() + 600_000


def _in(runtime: Runtime, state: State) -> str:
    """A job brought to ``state`` through the scripts."""
    if state is State.DELAYED:
        return _new(runtime, delayed=True)
    job_id = _new(runtime)
    if state is State.WAITING:
        return job_id
    if state is State.CANCELLED:
        runtime.jobs.cancel(job_id)
        return job_id
    assert len(_claim(runtime, job_id).fetched) == 1
    if state is State.CLAIMED:
        return job_id
    assert runtime.executor.run(transitions.begin(WORKER, [(job_id, 1, 1, now_ms())])) == []
    if state is State.RETRYING:
        _finish(runtime, job_id, AttemptOutcome.RETRYING, error="e", next_attempt_at=_later())
    elif state is State.COMPLETED:
        _finish(runtime, job_id, AttemptOutcome.COMPLETED, result=None)
    elif state is State.FAILED:
        _finish(runtime, job_id, AttemptOutcome.FAILED, error="e", failed_reason="r")
    return job_id


def _apply(runtime: Runtime, operation: Operation, job_id: str) -> None:
    store = runtime.store
    generation = _generation(runtime, job_id)
    state = store.get(job_id).state
    if operation is Operation.PROMOTE:
        runtime.client.zadd(keys.DUE, {job_id: 0})
        assert store.promote(1000).count >= 1
    elif operation is Operation.CLAIM:
        runtime.client.delete(keys.worker(WORKER))  # from claimed or active: the owner is lost
        if state != State.WAITING:
            _push(runtime, job_id)  # a redelivery (or a message the promoter would send)
        assert len(_claim(runtime, job_id, OTHER_WORKER).fetched) == 1
    elif operation is Operation.BEGIN:
        begun = transitions.begin(WORKER, [(job_id, generation, 1, now_ms())])
        assert runtime.executor.run(begun) == []
    elif operation is Operation.COMPLETE:
        _finish(runtime, job_id, AttemptOutcome.COMPLETED, result={"ok": True})
    elif operation is Operation.RETRY:
        _finish(runtime, job_id, AttemptOutcome.RETRYING, error="e", next_attempt_at=_later())
    elif operation is Operation.FAIL:
        _finish(runtime, job_id, AttemptOutcome.FAILED, error="e", failed_reason="r")
    elif operation is Operation.DELIVERY_CAP:
        record = store.get(job_id)
        runtime.client.hset(keys.job(job_id), "maxDeliveries", record.deliveries)
        runtime.client.delete(keys.worker(WORKER))
        if state != State.WAITING:
            _push(runtime, job_id)
        assert _claim(runtime, job_id, OTHER_WORKER).skipped == [(job_id, "dead")]
    elif operation is Operation.REQUEUE:
        _finish(runtime, job_id, AttemptOutcome.REQUEUED)
    elif operation is Operation.RELEASE:
        released = transitions.Released(f"{job_id}.{generation}", job_id, generation)
        assert runtime.executor.run(transitions.release(WORKER, _queue(job_id), [released])) == 1
    elif operation is Operation.CANCEL:
        runtime.jobs.cancel(job_id)
    elif operation is Operation.MANUAL_RETRY:
        store.retry(job_id)
    elif operation is Operation.RECOVER_LOST:
        assert job_id in store.recover_lost(WORKER)
    elif operation is Operation.STALE_DELIVERY:
        runtime.client.delete(keys.ready_queue(_queue(job_id)))
        _push(runtime, job_id, generation + 7)
        if state in (State.CLAIMED, State.ACTIVE):
            _push(runtime, job_id)  # a duplicate while its owner lives
        claimed = _claim(runtime, job_id, OTHER_WORKER)
        assert claimed.fetched == [] and len(claimed.skipped) >= 1
    elif operation is Operation.RETENTION:
        pruner = RetentionPruner(runtime.executor, runtime.settings)
        far = now_ms() + 10 * int(runtime.settings.failed_retention * 1000)
        while not pruner.prune_batch(state, JOB_TYPE, far)[2]:
            pass
    elif operation is Operation.PURGE:
        assert store.purge(job_id, (State.FAILED,))
    else:
        raise AssertionError(f"no way to apply {operation}")


def _cells() -> list[tuple[Transition, State | None]]:
    cells: list[tuple[Transition, State | None]] = []
    for transition in TRANSITIONS:
        cells += [(transition, s) for s in transition.sources] or [(transition, None)]
    return cells


@pytest.mark.parametrize(
    ("transition", "source"),
    _cells(),
    ids=[f"{t.operation}-from-{s or 'nothing'}" for t, s in _cells()],
)
def test_every_cell_of_the_lifecycle_table(runtime: Runtime, transition: Transition, source):
    if source is None:
        job_id = _new(runtime, delayed=transition.operation is Operation.CREATE_DELAYED)
        history_before: list[dict[str, object]] = []
        due_before = None
    else:
        job_id = _in(runtime, source)
        history_before = runtime.store.events(job_id)
        due_before = runtime.client.zscore(keys.DUE, job_id)
        _apply(runtime, transition.operation, job_id)
        if transition.sends:
            sent = f"{job_id}.{_generation(runtime, job_id)}"
            assert runtime.client.hexists(keys.messages(_queue(job_id)), sent)
            assert sent in runtime.client.lrange(keys.ready_queue(_queue(job_id)), 0, -1)

    indexed = {
        state
        for state in ALL_STATES
        if runtime.client.zscore(keys.index_state_type(state, JOB_TYPE), job_id) is not None
    }
    due = runtime.client.zscore(keys.DUE, job_id)
    if transition.target == DELETED:
        with pytest.raises(JobNotFound):
            runtime.store.get(job_id)
        assert indexed == set() and due is None
        assert runtime.client.exists(keys.job_effects(job_id)) == 0
        return
    expected = source if transition.target == SAME else transition.target
    assert runtime.store.get(job_id).state == expected
    assert indexed == {expected}, "the job is in exactly the index of its state"
    history = runtime.store.events(job_id)
    if transition.event is None:
        assert history == history_before
    else:
        assert history[-1]["event"] == transition.event
    check: dict[DueSet, Callable[[], bool]] = {
        DueSet.ENTERS: lambda: due is not None,
        DueSet.LEAVES: lambda: due is None,
        DueSet.UNCHANGED: lambda: due == due_before,
    }
    assert check[transition.due](), f"due set: expected {transition.due}, score {due}"


def test_the_readme_quotes_the_lifecycle_table():
    from jobcore.model.lifecycle import lifecycle_table_markdown

    assert lifecycle_table_markdown() in README.read_text()
