"""Runs store operations (``calls.py``) on a ``redis.asyncio`` client: the asynchronous twin
of ``executor.py`` for processes that serve on an event loop (the API). The operations, the
scripts and the reading of a pipeline's replies (``executor.Round``) are the same ones the
synchronous executor runs; only the waiting differs."""

from __future__ import annotations

from typing import Any, TypeVar

import redis.asyncio
from redis.exceptions import NoScriptError

from jobcore.errors import NotReplicated
from jobcore.store.calls import Call, Commands, Operation, Replicated
from jobcore.store.connection import store_errors
from jobcore.store.executor import Round
from jobcore.store.replication import NO_REPLICAS, ReplicaAck
from jobcore.store.scripts import ScriptCall

T = TypeVar("T")


class AsyncExecutor:
    """Runs operations on one ``redis.asyncio`` client (its pool serves one event loop)."""

    def __init__(self, client: redis.asyncio.Redis, replica_ack: ReplicaAck = NO_REPLICAS) -> None:
        self.client = client
        self.replica_ack = replica_ack

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
        if isinstance(call, Replicated):
            if not self.replica_ack.required:
                return await self._perform(call.call)
            (reply,) = await self._perform_round([call])
            if isinstance(reply, Exception):
                raise reply
            return reply
        if isinstance(call, ScriptCall):
            return await self._evalsha(call)
        assert isinstance(call, Commands)
        return await self._pipeline(call.commands, raise_on_error=True)

    async def _perform_round(self, calls: list[Call]) -> list[Any]:
        """As ``Executor._perform_round``: one pipeline, scripts Redis lacked sent again."""
        round_ = Round(calls, self.replica_ack)
        out, again = round_.read(await self._pipeline(round_.commands, raise_on_error=False))
        if again:
            for script in round_.lacking(again):
                await self.client.script_load(script.source)
            retried = await self._perform_round([calls[i] for i in again])
            for index, reply in zip(again, retried, strict=True):
                out[index] = reply
        return out

    async def _pipeline(
        self, commands: tuple[tuple[Any, ...], ...], *, raise_on_error: bool
    ) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return await pipe.execute(raise_on_error=raise_on_error)

    async def _evalsha(self, call: ScriptCall) -> Any:
        command = call.command()
        try:
            return await self.client.execute_command(*command)  # type: ignore[no-untyped-call]
        except NoScriptError:
            await self.client.script_load(call.script.source)
            return await self.client.execute_command(*command)  # type: ignore[no-untyped-call]
