"""The asynchronous executor and ``AsyncJobs`` against a real Redis: the same operations and
scripts as the synchronous path, with the same answers and errors."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import pytest
import redis
from conftest import new_job
from redis.asyncio.connection import AbstractConnection

from jobcore.async_jobs import AsyncJobs
from jobcore.clock import now_ms
from jobcore.errors import IdempotencyConflict, InvalidTransition, JobNotFound, StoreUnavailable
from jobcore.intake.submission import SubmissionParser
from jobcore.runtime import Runtime
from jobcore.settings import Settings
from jobcore.store import transitions
from jobcore.store.async_executor import AsyncExecutor
from jobcore.store.calls import commands, replicated, single
from jobcore.store.connection import connect_async
from jobcore.store.replication import ReplicaAck
from jobcore_devstack.redis_server import RedisServer

T = TypeVar("T")


def _on_loop(settings: Settings, body: Callable[[AsyncExecutor], Awaitable[T]]) -> T:
    """Run ``body`` with an executor on a fresh client, closed afterwards."""

    async def main() -> T:
        executor = AsyncExecutor(connect_async(settings))
        try:
            return await body(executor)
        finally:
            await executor.close()

    return asyncio.run(main())


def _jobs(runtime: Runtime, executor: AsyncExecutor) -> AsyncJobs:
    return AsyncJobs(runtime.jobs.operations, executor)


def _submission(runtime: Runtime, payload: Any, key: str | None = None) -> Any:
    parser = SubmissionParser(runtime.job_types)
    body = {"type": "dummy", "payload": payload}
    return parser.parse(body, key, now_ms=now_ms())


def test_a_job_submitted_on_the_loop_is_the_record_the_sync_path_reads(runtime, settings):
    async def body(executor: AsyncExecutor) -> Any:
        return await _jobs(runtime, executor).submit(_submission(runtime, {"echo": "one"}))

    accepted = _on_loop(settings, body)
    assert accepted.state == "waiting" and not accepted.duplicate
    record = runtime.jobs.get(accepted.job_id)
    # The session's worker, when an earlier test started it, may have taken it already.
    assert record.state in ("waiting", "claimed", "active", "completed")
    assert record.payload == {"echo": "one"}
    assert len(record.trace_id) == 32


def test_a_replayed_key_returns_the_first_job_and_a_changed_body_conflicts(runtime, settings):
    key = f"async-{uuid.uuid4()}"

    async def body(executor: AsyncExecutor) -> Any:
        jobs = _jobs(runtime, executor)
        first = await jobs.submit(_submission(runtime, {"echo": "one"}, key))
        again = await jobs.submit(_submission(runtime, {"echo": "one"}, key))
        with pytest.raises(IdempotencyConflict):
            await jobs.submit(_submission(runtime, {"echo": "two"}, key))
        return first, again

    first, again = _on_loop(settings, body)
    assert again.duplicate and again.job_id == first.job_id


def test_reads_and_operations_answer_as_the_sync_jobs_do(runtime, settings):
    job = new_job("default")
    runtime.store.create(job)

    async def body(executor: AsyncExecutor) -> Any:
        jobs = _jobs(runtime, executor)
        got = await jobs.get(job.id)
        cancelled = await jobs.cancel(job.id)
        with pytest.raises(InvalidTransition):
            await jobs.cancel(job.id)
        with pytest.raises(JobNotFound):
            await jobs.get("no-such-job")
        events = await jobs.events(job.id)
        page = await jobs.list(state="cancelled", limit=500)
        return got, cancelled, events, page, await jobs.stats(), await jobs.ping()

    got, cancelled, events, page, stats, pong = _on_loop(settings, body)
    assert got.state == "waiting" and cancelled.state == "cancelled"
    assert [e["event"] for e in events][-1] == "cancelled"
    assert job.id in [r.id for r in page.items]
    assert stats == runtime.jobs.stats()
    assert pong is True


def test_a_script_redis_forgot_is_loaded_again_and_runs_once(runtime, settings):
    runtime.client.script_flush()
    job = new_job("default")

    async def body(executor: AsyncExecutor) -> Any:
        return await executor.run(transitions.create(job))

    created = _on_loop(settings, body)
    assert created.outcome == "created"
    assert [e["event"] for e in runtime.jobs.events(job.id)].count("accepted") == 1


def test_a_replicated_call_without_required_replicas_sends_no_wait(runtime, settings):
    key = f"async-{uuid.uuid4()}"

    def waits() -> int:
        return int(runtime.client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))

    async def body(executor: AsyncExecutor) -> Any:
        return await executor.run(single(replicated(commands(("INCR", key)))))

    before = waits()
    assert _on_loop(settings, body) == [1]
    assert waits() == before


def test_a_confirmed_round_counts_replicas_and_loads_lacking_scripts(runtime, settings):
    """With a replica required and none attached, the write stands but the call is told it
    was not confirmed (as the synchronous executor tells it)."""
    runtime.client.script_flush()
    job = new_job("default")

    async def body(executor: AsyncExecutor) -> Any:
        executor.replica_ack = ReplicaAck(replicas=1, timeout_ms=50)
        return await executor.run(transitions.create(job))

    with pytest.raises(StoreUnavailable, match="replica"):
        _on_loop(settings, body)
    # Written (the session's worker, when an earlier test started it, may have taken it).
    assert runtime.jobs.get(job.id).state in ("waiting", "claimed", "active", "completed")


def test_a_redis_error_of_a_command_leaves_as_itself(runtime, settings):
    key = f"async-{uuid.uuid4()}"
    runtime.client.hset(key, "a", "1")

    async def body(executor: AsyncExecutor) -> Any:
        return await executor.run(single(commands(("INCR", key))))

    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        _on_loop(settings, body)


def test_an_unreachable_redis_is_store_unavailable(settings):
    gone = replace(settings, redis_url="redis://127.0.0.1:1/0", redis_timeout=0.2)

    async def body(executor: AsyncExecutor) -> Any:
        return await executor.run(single(commands(("PING",))))

    with pytest.raises(StoreUnavailable):
        _on_loop(gone, body)


def test_calls_made_in_one_loop_turn_share_one_pipeline_and_keep_their_own_replies(
    runtime, settings, monkeypatch
):
    key, wrong = f"async-{uuid.uuid4()}", f"async-{uuid.uuid4()}"
    runtime.client.hset(wrong, "a", "1")
    runtime.client.script_flush()
    job = new_job("default")

    async def body(executor: AsyncExecutor) -> Any:
        # Each pipeline is one write to Redis (connections also write their handshakes).
        writes: list[bytes] = []
        sent = AbstractConnection.send_packed_command

        async def counted(self: AbstractConnection, command: Any, *args: Any, **kw: Any) -> Any:
            writes.append(command if isinstance(command, bytes) else b"".join(command))
            return await sent(self, command, *args, **kw)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
        calls = [executor.run(single(commands(("INCR", key)))) for _ in range(20)]
        calls.append(executor.run(single(commands(("INCR", wrong)))))
        # A script Redis lacks: loaded, then sent again, without disturbing the others.
        calls.append(executor.run(transitions.create(job)))
        results = await asyncio.gather(*calls, return_exceptions=True)
        return results, writes

    results, writes = _on_loop(settings, body)
    assert sorted(r[0] for r in results[:20]) == list(range(1, 21))
    assert isinstance(results[20], redis.ResponseError) and "WRONGTYPE" in str(results[20])
    assert results[21].outcome == "created"
    # One pipeline for the turn; then, once the script is loaded, its call sent again.
    incr, evalsha = b"$4\r\nINCR\r\n", b"$7\r\nEVALSHA\r\n"
    [turn] = [w for w in writes if incr in w]
    assert turn.count(incr) == 21 and evalsha in turn
    assert len([w for w in writes if evalsha in w]) == 2
    assert runtime.jobs.get(job.id).state == "waiting"


def test_replies_cut_off_by_the_timeout_never_answer_a_later_call(tmp_path, settings):
    """A Redis that pauses past the timeout fails the calls waiting on it; the replies it
    sends once it resumes must not be read as the answers of the calls made after."""
    server = RedisServer(tmp_path / "paused").start()
    try:
        paused = replace(settings, redis_url=server.url, redis_timeout=0.3)

        async def body(executor: AsyncExecutor) -> Any:
            async def echo(text: str) -> Any:
                return await executor.run(single(commands(("ECHO", text))))

            await echo("warm")  # the pool holds a connection
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                cut_off = await asyncio.gather(
                    *(echo(f"cut-{i}") for i in range(10)), return_exceptions=True
                )
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            await asyncio.sleep(0.2)  # the paused Redis has answered the cut-off calls by now
            after = await asyncio.gather(*(echo(f"after-{i}") for i in range(10)))
            return cut_off, after

        cut_off, after = _on_loop(paused, body)
    finally:
        server.stop()
    assert all(isinstance(r, StoreUnavailable) for r in cut_off), cut_off
    assert [r[0] for r in after] == [f"after-{i}" for i in range(10)]
