"""Store operations as data: each is a generator that yields the Redis calls it needs and
returns a named value built from their replies. An executor runs them (``executor.py``), so
the same operation serves a synchronous and an asynchronous client with no second copy."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from jobcore.store.scripts import ScriptCall

T = TypeVar("T")


@dataclass(frozen=True)
class Commands:
    """Plain Redis commands sent in one pipeline (no transaction); the reply is their list."""

    commands: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Replicated:
    """A call whose write counts only once enough replicas confirm it (``replication.py``):
    the executor waits for them on the same connection, right after the call, and throws
    ``NotReplicated`` into the operation when too few confirm in time."""

    call: ScriptCall | Commands


#: What an operation yields to its executor.
Call = ScriptCall | Commands | Replicated
#: An operation: yields calls, receives each reply, returns its result.
Operation = Generator[Call, Any, T]


def commands(*items: Sequence[Any]) -> Commands:
    return Commands(tuple(tuple(item) for item in items))


def replicated(call: ScriptCall | Commands) -> Replicated:
    """``call``, confirmed by the replicas ``JOBCORE_MIN_REPLICAS_ACK`` asks for."""
    return Replicated(call)


def single(call: Call) -> Operation[Any]:
    """An operation of one call whose result is the call's reply."""
    reply = yield call
    return reply
