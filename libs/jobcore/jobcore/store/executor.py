"""Runs store operations (``calls.py``) against Redis: the only place the record store does
I/O. Script calls go by ``EVALSHA`` (loading the script once when Redis lacks it); commands
go in one pipeline. redis-py's errors leave as ``StoreUnavailable`` (``connection.py``)."""

from __future__ import annotations

from typing import Any, TypeVar

import redis

from jobcore.store.calls import Call, Commands, Operation
from jobcore.store.connection import store_errors
from jobcore.store.scripts import LuaScript, ScriptCall

T = TypeVar("T")


class Executor:
    """Runs operations on one synchronous client."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._registered: dict[str, Any] = {}

    def run(self, operation: Operation[T]) -> T:
        """Drive ``operation`` to its result: one round trip per call it yields."""
        with store_errors():
            try:
                call = next(operation)
                while True:
                    call = operation.send(self._perform(call))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def _perform(self, call: Call) -> Any:
        if isinstance(call, ScriptCall):
            return self._script(call.script)(keys=call.keys, args=call.args)
        assert isinstance(call, Commands)
        pipe = self.client.pipeline(transaction=False)
        for command in call.commands:
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        return pipe.execute()

    def _script(self, script: LuaScript) -> Any:
        registered = self._registered.get(script.name)
        if registered is None:
            registered = self._registered[script.name] = self.client.register_script(script.source)
        return registered
