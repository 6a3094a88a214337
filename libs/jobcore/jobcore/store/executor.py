"""Runs store operations (``calls.py``) against Redis: the only place the record store does
I/O. Script calls go by ``EVALSHA`` (loading the script once when Redis lacks it); commands
go in one pipeline; a ``Replicated`` call shares its pipeline with the replica confirmation
of ``replication.py``. redis-py's errors leave as ``StoreUnavailable`` (``connection.py``)."""

from __future__ import annotations

from typing import Any, TypeVar

import redis

from jobcore.errors import NotReplicated
from jobcore.store.calls import Call, Commands, Operation, Replicated
from jobcore.store.connection import store_errors
from jobcore.store.replication import NO_REPLICAS, ReplicaAck
from jobcore.store.scripts import LuaScript, ScriptCall

T = TypeVar("T")


class Executor:
    """Runs operations on one synchronous client."""

    def __init__(self, client: redis.Redis, replica_ack: ReplicaAck = NO_REPLICAS) -> None:
        self.client = client
        self.replica_ack = replica_ack
        self._registered: dict[str, Any] = {}

    def run(self, operation: Operation[T]) -> T:
        """Drive ``operation`` to its result: one round trip per call it yields."""
        with store_errors():
            try:
                call = next(operation)
                while True:
                    try:
                        reply = self._perform(call)
                    except NotReplicated as unconfirmed:
                        call = operation.throw(unconfirmed)
                        continue
                    call = operation.send(reply)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def _perform(self, call: Call) -> Any:
        if isinstance(call, Replicated):
            if not self.replica_ack.required:
                return self._perform(call.call)
            return self._replicated(call.call)
        if isinstance(call, ScriptCall):
            return self._script(call.script)(keys=call.keys, args=call.args)
        assert isinstance(call, Commands)
        pipe = self.client.pipeline(transaction=False)
        for command in call.commands:
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        return pipe.execute()

    def _replicated(self, call: ScriptCall | Commands) -> Any:
        """The call, then the confirmation, in one pipeline on one connection."""
        replies = self._pipeline(self.replica_ack.pipeline(call))
        if self.replica_ack.lacks_script(call, replies):
            assert isinstance(call, ScriptCall)
            self.client.script_load(call.script.source)
            replies = self._pipeline(self.replica_ack.pipeline(call))
        return self.replica_ack.reply(call, replies)

    def _pipeline(self, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        return pipe.execute(raise_on_error=False)

    def _script(self, script: LuaScript) -> Any:
        registered = self._registered.get(script.name)
        if registered is None:
            registered = self._registered[script.name] = self.client.register_script(script.source)
        return registered
