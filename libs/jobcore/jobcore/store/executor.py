"""Runs store operations (``calls.py``) against Redis: the only place the record store does
I/O. Script calls go by ``EVALSHA`` (loading the script once when Redis lacks it); commands
go in one pipeline; a ``Replicated`` call shares its pipeline with the replica confirmation
of ``replication.py``. redis-py's errors leave as ``StoreUnavailable`` (``connection.py``).
``run_many`` drives several operations at once, each round of their calls in one pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import redis
from redis.exceptions import NoScriptError

from jobcore.errors import NotReplicated, StoreUnavailable
from jobcore.store.calls import Call, Commands, Operation, Replicated
from jobcore.store.connection import as_store_error, store_errors
from jobcore.store.replication import NO_REPLICAS, ReplicaAck
from jobcore.store.scripts import LuaScript, ScriptCall

T = TypeVar("T")


class Round:
    """One pipeline's worth of calls, for either executor: the commands to send (with one
    replica confirmation when a call needs it), then each call's reply read back from the
    pipeline's replies."""

    def __init__(self, calls: Sequence[Call], replica_ack: ReplicaAck) -> None:
        self.calls = calls
        self.replica_ack = replica_ack
        self.confirm = replica_ack.required and any(isinstance(c, Replicated) for c in calls)
        self.plain = [c.call if isinstance(c, Replicated) else c for c in calls]
        self.staged = [
            (c.command(),) if isinstance(c, ScriptCall) else c.commands for c in self.plain
        ]
        self.flat = tuple(command for commands in self.staged for command in commands)
        confirmation = replica_ack.confirmation() if self.confirm else ()
        self.commands = self.flat + confirmation

    def read(self, replies: list[Any]) -> tuple[list[Any], list[int]]:
        """Each call's reply (its first error as its reply), and the indexes of the calls
        whose script Redis lacked (to send again once it is loaded)."""
        acknowledged = (
            self.replica_ack.acknowledged(replies[len(self.flat) :]) if self.confirm else 0
        )
        out: list[Any] = []
        again: list[int] = []
        at = 0
        for index, (call, plain, commands) in enumerate(
            zip(self.calls, self.plain, self.staged, strict=True)
        ):
            answer = replies[at : at + len(commands)]
            at += len(commands)
            errors = [a for a in answer if isinstance(a, Exception)]
            reply: Any = answer[0] if isinstance(plain, ScriptCall) else answer
            if errors and isinstance(errors[0], NoScriptError):
                again.append(index)
            elif errors:
                reply = errors[0]
            elif self.confirm and isinstance(call, Replicated):
                reply = self.replica_ack.shortfall(acknowledged, reply) or reply
            out.append(reply)
        return out, again

    def lacking(self, again: list[int]) -> list[LuaScript]:
        """The scripts the calls at ``again`` need loaded, once each."""
        scripts = {
            c.script.name: c.script for i in again if isinstance(c := self.plain[i], ScriptCall)
        }
        return list(scripts.values())


class Executor:
    """Runs operations on one synchronous client."""

    def __init__(self, client: redis.Redis, replica_ack: ReplicaAck = NO_REPLICAS) -> None:
        self.client = client
        self.replica_ack = replica_ack

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

    def run_many(self, operations: Sequence[Operation[T]]) -> list[T | Exception]:
        """Drive every operation to its result, one round trip per round of calls: each
        round sends the next call of every unfinished operation in one pipeline (with one
        replica confirmation for all of it). An operation that fails on its own gives its
        error as its result; an outage raises ``StoreUnavailable`` for all of them."""
        results: list[T | Exception] = [StoreUnavailable("not run")] * len(operations)
        with store_errors():
            pending = {
                i: call
                for i, op in enumerate(operations)
                if (call := self._step(i, op, next, results)) is not None
            }
            while pending:
                replies = self._perform_round(list(pending.values()))
                step = {}
                for (i, _call), reply in zip(pending.items(), replies, strict=True):
                    op = operations[i]
                    if isinstance(reply, Exception):
                        call = self._step(i, op, lambda o, r=reply: o.throw(r), results)
                    else:
                        call = self._step(i, op, lambda o, r=reply: o.send(r), results)
                    if call is not None:
                        step[i] = call
                pending = step
        return results

    @staticmethod
    def _step(
        index: int,
        operation: Operation[T],
        advance: Any,
        results: list[T | Exception],
    ) -> Call | None:
        """Advance one operation of ``run_many``: its next call, or ``None`` once it ended
        (its result or its own error stored). An outage leaves for the whole batch."""
        try:
            return advance(operation)  # type: ignore[no-any-return]
        except StopIteration as done:
            results[index] = done.value
        except StoreUnavailable:
            raise
        except redis.RedisError as exc:
            translated = as_store_error(exc)
            if isinstance(translated, StoreUnavailable):
                raise translated from exc
            results[index] = translated
        except Exception as exc:
            results[index] = exc
        return None

    def _perform_round(self, calls: list[Call]) -> list[Any]:
        """One reply per call (an error as its reply), all sent in one pipeline; calls whose
        script Redis lacked are sent again once it is loaded (nothing of them ran)."""
        round_ = Round(calls, self.replica_ack)
        out, again = round_.read(self._pipeline(round_.commands))
        if again:
            for script in round_.lacking(again):
                self.client.script_load(script.source)
            retried = self._perform_round([calls[i] for i in again])
            for index, reply in zip(again, retried, strict=True):
                out[index] = reply
        return out

    def _perform(self, call: Call) -> Any:
        if isinstance(call, Replicated):
            if not self.replica_ack.required:
                return self._perform(call.call)
            # The call, then the confirmation, in one pipeline on one connection.
            (reply,) = self._perform_round([call])
            if isinstance(reply, Exception):
                raise reply
            return reply
        if isinstance(call, ScriptCall):
            return self._evalsha(call)
        assert isinstance(call, Commands)
        pipe = self.client.pipeline(transaction=False)
        for command in call.commands:
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        return pipe.execute()

    def _pipeline(self, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        return pipe.execute(raise_on_error=False)

    def _evalsha(self, call: ScriptCall) -> Any:
        """The script by ``EVALSHA``, loaded first if Redis lacks it (straight through the
        client: redis-py's ``Script`` object adds a few layers per call)."""
        command = call.command()
        try:
            return self.client.execute_command(*command)  # type: ignore[no-untyped-call]
        except NoScriptError:
            self.client.script_load(call.script.source)
            return self.client.execute_command(*command)  # type: ignore[no-untyped-call]
