"""Runs store operations (``calls.py``) on a ``redis.asyncio`` client: the asynchronous twin
of ``executor.py`` for processes that serve on an event loop (the API). The operations, the
scripts and the reading of a pipeline's replies (``executor.Round``) are the same ones the
synchronous executor runs; only the waiting differs."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import redis.asyncio

from jobcore.errors import NotReplicated
from jobcore.store.calls import Call, Operation
from jobcore.store.connection import store_errors
from jobcore.store.executor import Round
from jobcore.store.replication import NO_REPLICAS, ReplicaAck

T = TypeVar("T")


class AsyncExecutor:
    """Runs operations on one ``redis.asyncio`` client (its pool serves one event loop).

    Calls made in the same turn of the event loop share one pipeline (one connection taken
    from the pool, one write, one read for all of them), as ioredis's auto-pipelining does:
    concurrent requests each making one call would otherwise each pay for a pool checkout
    and a round trip of their own. Each call's replies are still its own, read by the same
    ``Round`` as the synchronous executor's; a call Redis answers with an error, or whose
    script Redis lacked, affects no other call of the pipeline.
    """

    def __init__(self, client: redis.asyncio.Redis, replica_ack: ReplicaAck = NO_REPLICAS) -> None:
        self.client = client
        self.replica_ack = replica_ack
        self._waiting: list[tuple[tuple[tuple[Any, ...], ...], asyncio.Future[list[Any]]]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    async def run(self, operation: Operation[T]) -> T:
        """Drive ``operation`` to its result: one round trip per call it yields."""
        with store_errors():
            try:
                call = next(operation)
                while True:
                    try:
                        reply = await self._perform(call)
                    except NotReplicated as unconfirmed:
                        call = operation.throw(unconfirmed)
                        continue
                    call = operation.send(reply)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.client.aclose()

    async def _perform(self, call: Call) -> Any:
        """The call's reply; an error reply (or too few replicas) is raised."""
        round_ = Round([call], self.replica_ack)
        (reply,), again = round_.read(await self._send(round_.commands))
        if again:
            for script in round_.lacking(again):
                await self.client.script_load(script.source)
            (reply,), _ = round_.read(await self._send(round_.commands))
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _send(self, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
        """The replies to ``commands`` (errors as values), sent in this loop turn's pipeline."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._flush_later)
        self._waiting.append((commands, future))
        return await future

    def _flush_later(self) -> None:
        waiting, self._waiting = self._waiting, []
        task = asyncio.get_running_loop().create_task(self._flush(waiting))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(
        self, waiting: list[tuple[tuple[tuple[Any, ...], ...], asyncio.Future[list[Any]]]]
    ) -> None:
        pipe = self.client.pipeline(transaction=False)
        for commands, _future in waiting:
            for command in commands:
                pipe.execute_command(*command)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            for _commands, future in waiting:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            # Cancelled (the server stopping): so are the calls waiting on it.
            for _commands, future in waiting:
                future.cancel()
            raise
        at = 0
        for commands, future in waiting:
            if not future.done():
                future.set_result(replies[at : at + len(commands)])
            at += len(commands)
