"""The lifecycle table (``jobcore.model.lifecycle``) driven cell by cell against the real
scripts on a real Redis: every operation from every state it names leads to its state, adds
its history event, and leaves the job in exactly one index and the due set as it says."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from jobcore.clock import now_ms
from jobcore.errors import JobNotFound
from jobcore.jobs import new_job_id
from jobcore.model.lifecycle import DELETED, SAME, TRANSITIONS, DueSet, Operation, Transition
from jobcore.model.states import ALL_STATES, AttemptOutcome, State
from jobcore.runtime import Runtime
from jobcore.store import keys
from jobcore.store.retention import RetentionPruner
from jobcore.store.transitions import NewJob, ReadyMessage

WORKER = "lifecycle-test-worker"  # no presence key: as far as Redis knows, it is gone
JOB_TYPE = "dummy"
README = Path(__file__).resolve().parent.parent / "README.md"


def _new(runtime: Runtime, *, delayed: bool = False, with_message: bool = False) -> str:
    """A new job; ``with_message``: written with its ready-queue message (not due)."""
    job_id, now = new_job_id(), now_ms()
    message = ReadyMessage(
        keys.ready_queue("lifecycle-test"), keys.messages("lifecycle-test"), job_id, b"{}"
    )
    runtime.store.create(
        NewJob(
            id=job_id,
            job_type=JOB_TYPE,
            queue="default",
            payload_json="{}",
            state=State.DELAYED if delayed else State.WAITING,
            due_at=now + 600_000 if delayed else now,
            run_at=now + 600_000 if delayed else None,
            max_attempts=3,
            max_deliveries=8,
            backoff_json="{}",
            trace_id="0" * 32,
            traceparent="",
            created_at=now,
        ),
        message=message if with_message else None,
    )
    return job_id


def _later() -> int:
    """A retry's time far enough ahead that it waits in the due set."""
    return now_ms() + 600_000


def _generation(runtime: Runtime, job_id: str) -> int:
    return runtime.store.get(job_id).generation


def _finish(runtime: Runtime, job_id: str, outcome: AttemptOutcome, **details: object) -> None:
    assert runtime.store.finish(
        job_id, _generation(runtime, job_id), WORKER, outcome, **details
    ).recorded


def _in(runtime: Runtime, state: State) -> str:
    """A job brought to ``state`` through the scripts."""
    if state is State.DELAYED:
        return _new(runtime, delayed=True)
    job_id = _new(runtime)
    if state is State.WAITING:
        return job_id
    if state is State.CANCELLED:
        runtime.store.cancel(job_id)
        return job_id
    assert runtime.store.start(job_id, 1, WORKER).outcome == "started"
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
    if operation is Operation.PROMOTE:
        runtime.client.zadd(keys.DUE, {job_id: 0})
        assert store.promote(1000).count >= 1
    elif operation is Operation.START:
        assert store.start(job_id, generation, WORKER).outcome == "started"
    elif operation is Operation.COMPLETE:
        _finish(runtime, job_id, AttemptOutcome.COMPLETED, result={"ok": True})
    elif operation is Operation.RETRY:
        _finish(runtime, job_id, AttemptOutcome.RETRYING, error="e", next_attempt_at=_later())
    elif operation is Operation.FAIL:
        _finish(runtime, job_id, AttemptOutcome.FAILED, error="e", failed_reason="r")
    elif operation is Operation.DELIVERY_CAP:
        record = store.get(job_id)
        runtime.client.hset(keys.job(job_id), "maxDeliveries", record.deliveries)
        assert store.start(job_id, generation, WORKER).outcome == "dead"
    elif operation is Operation.REQUEUE:
        _finish(runtime, job_id, AttemptOutcome.REQUEUED)
    elif operation is Operation.CANCEL:
        store.cancel(job_id)
    elif operation is Operation.MANUAL_RETRY:
        store.retry(job_id)
    elif operation is Operation.RECOVER_ORPHAN:
        assert store.recover_orphan(job_id)
    elif operation is Operation.STALE_DELIVERY:
        assert store.start(job_id, generation + 7, WORKER).outcome in ("stale", "terminal")
    elif operation is Operation.RETENTION:
        state = store.get(job_id).state
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
        delayed = transition.operation is Operation.CREATE_DELAYED
        job_id = _new(runtime, delayed=delayed, with_message=not delayed)
        history_before: list[dict[str, object]] = []
        due_before = None
    else:
        job_id = _in(runtime, source)
        history_before = runtime.store.events(job_id)
        due_before = runtime.client.zscore(keys.DUE, job_id)
        _apply(runtime, transition.operation, job_id)
        if transition.sends:
            sent = f"{job_id}.{_generation(runtime, job_id)}"
            assert runtime.client.hexists(keys.messages("default"), sent)
            assert sent in runtime.client.lrange(keys.ready_queue("default"), 0, -1)

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
