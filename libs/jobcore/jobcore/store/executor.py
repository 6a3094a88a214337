"""Runs store operations (``calls.py``) against Redis: the only place the record store does
I/O. Script calls go by ``EVALSHA`` (loading the script once when Redis lacks it); commands
go in one pipeline; a ``Replicated`` call shares its pipeline with the replica confirmation
of ``replication.py``. redis-py's errors leave as ``StoreUnavailable`` (``connection.py``)."""

from __future__ import annotations

from typing import Any, TypeVar

import redis
from redis.exceptions import NoScriptError

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
        replies = self._with_confirmation(call)
        if isinstance(call, ScriptCall) and isinstance(replies[0], NoScriptError):
            self.client.script_load(call.script.source)
            replies = self._with_confirmation(call)
        *answers, _mark, acknowledged = replies
        for answer in (*answers, acknowledged):
            if isinstance(answer, Exception):
                raise answer
        reply = answers[0] if isinstance(call, ScriptCall) else answers
        unconfirmed = self.replica_ack.check(acknowledged, reply)
        if unconfirmed is not None:
            raise unconfirmed
        return reply

    def _with_confirmation(self, call: ScriptCall | Commands) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        if isinstance(call, ScriptCall):
            sha = self._script(call.script).sha
            pipe.evalsha(sha, len(call.keys), *call.keys, *call.args)
        else:
            for command in call.commands:
                pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        for command in self.replica_ack.confirmation():
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        return pipe.execute(raise_on_error=False)

    def _script(self, script: LuaScript) -> Any:
        registered = self._registered.get(script.name)
        if registered is None:
            registered = self._registered[script.name] = self.client.register_script(script.source)
        return registered
