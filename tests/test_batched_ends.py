"""Ends of attempts written in batches: several operations in one pipeline per round
(``Executor.run_many``), and a process's end writer that groups whatever waits."""

from __future__ import annotations

import threading
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import new_job, start_job

from jobcore.clock import now_ms
from jobcore.errors import StoreUnavailable
from jobcore.execution.end_writer import EndWriter
from jobcore.model.states import AttemptOutcome
from jobcore.runtime import Runtime
from jobcore.store import scripts, transitions
from jobcore.store.calls import Operation, commands, single
from jobcore.store.executor import Executor
from jobcore.store.transitions import Finished


class CountingExecutor(Executor):
    """A real executor that counts the pipelines it sends (its round trips)."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime.client)
        self.pipelines = 0

    def _pipeline(self, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
        self.pipelines += 1
        return super()._pipeline(commands)


def _started(runtime: Runtime, count: int) -> list[str]:
    """Jobs begun by ``w-batch``, in a queue no running worker reads."""
    ids = []
    for _ in range(count):
        job = new_job(f"batch-{uuid.uuid4()}")
        runtime.store.create(job)
        start_job(runtime, job.id, "w-batch")
        ids.append(job.id)
    return ids


def _finish(job_id: str) -> Operation[Finished]:
    return transitions.finish(
        job_id, 1, "w-batch", now_ms(), AttemptOutcome.COMPLETED, result={"n": job_id}, attempt=1
    )


def test_run_many_finishes_every_job_in_one_round_trip(runtime):
    ids = _started(runtime, 5)
    runtime.client.script_load(scripts.FINISH.source)
    executor = CountingExecutor(runtime)
    results = executor.run_many([_finish(job_id) for job_id in ids])
    assert results == [Finished(True)] * 5
    assert executor.pipelines == 1
    for job_id in ids:
        record = runtime.store.get(job_id)
        assert record.state == "completed" and record.result == {"n": job_id}


def test_run_many_loads_a_script_redis_forgot_and_runs_each_operation_once(runtime):
    ids = _started(runtime, 3)
    runtime.client.script_flush()
    results = Executor(runtime.client).run_many([_finish(job_id) for job_id in ids])
    assert results == [Finished(True)] * 3
    for job_id in ids:
        events = [e["event"] for e in runtime.store.events(job_id)]
        assert events.count("completed") == 1, events


def test_an_operation_that_fails_alone_leaves_the_others_written(runtime):
    (job_id,) = _started(runtime, 1)
    wrong = f"batch-{uuid.uuid4()}"
    runtime.client.hset(wrong, "a", "1")
    results = Executor(runtime.client).run_many(
        [single(commands(("INCR", wrong))), _finish(job_id)]
    )
    assert "WRONGTYPE" in str(results[0])
    assert results[1] == Finished(True)
    assert runtime.store.get(job_id).state == "completed"


def test_an_outage_fails_the_whole_batch_as_store_unavailable(runtime):
    import redis

    gone = redis.Redis(port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    with pytest.raises(StoreUnavailable):
        Executor(gone).run_many([single(commands(("PING",))), single(commands(("PING",)))])


class CountedEnd:
    """An end whose write increments one counter, and remembers being told."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.told: list[Any] = []

    def operation(self) -> Operation[Any]:
        return single(commands(("INCR", self.key)))

    def written(self, finished: Any, *, tried_again: bool) -> None:
        self.told.append(finished)
        self.tried_again = tried_again


def test_the_end_writer_groups_ends_and_writes_every_one_once_before_it_stops(runtime):
    executor = CountingExecutor(runtime)
    writer = EndWriter(executor)
    writer.start()
    key = f"batch-count-{uuid.uuid4()}"
    ends = [CountedEnd(key) for _ in range(800)]

    def put_all(share: list[CountedEnd]) -> None:
        for end in share:
            writer.put(end)

    threads = [threading.Thread(target=put_all, args=(ends[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.stop()
    assert int(runtime.client.get(key)) == 800
    assert all(len(end.told) == 1 for end in ends)
    assert executor.pipelines < 800, "no two ends shared a round trip"


def test_the_end_writer_writes_on_the_callers_thread_when_not_started(runtime):
    writer = EndWriter(Executor(runtime.client))
    key = f"batch-count-{uuid.uuid4()}"
    end = CountedEnd(key)
    writer.put(end)
    assert end.told == [[1]] and int(runtime.client.get(key)) == 1


def test_a_single_call_loads_a_script_redis_forgot(runtime):
    (job_id,) = _started(runtime, 1)
    runtime.client.script_flush()
    assert Executor(runtime.client).run(_finish(job_id)) == Finished(True)
    assert runtime.store.get(job_id).state == "completed"


class LosesFirstReply(Executor):
    """Runs a batch, then fails its first reply as a timeout would (the write happened)."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime.client)
        self.lost = False

    def run_many(self, operations):  # type: ignore[no-untyped-def]
        results = super().run_many(operations)
        if not self.lost:
            self.lost = True
            raise StoreUnavailable("Redis is unreachable: Timeout reading from socket")
        return results


def test_an_end_whose_first_reply_was_lost_is_logged_as_what_it_recorded(runtime):
    from structlog.testing import capture_logs

    from jobcore.execution.job_lifecycle import AttemptEnd

    (job_id,) = _started(runtime, 1)
    job = SimpleNamespace(
        id=job_id, type="dummy", attempt=1, generation=1, worker_id="w-batch", started_at=now_ms()
    )
    end = AttemptEnd(None, job, AttemptOutcome.COMPLETED, {"result_text": "null"})  # type: ignore[arg-type]
    end.ack = None
    writer = EndWriter(LosesFirstReply(runtime))
    with capture_logs() as lines:
        writer._write([end])
    assert runtime.store.get(job_id).state == "completed"
    ends = [line["event"] for line in lines if "store" not in line["event"]]
    assert ends == ["job completed"]
