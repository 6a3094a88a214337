"""The lifecycle as one table: for each operation, the states it applies to, the state it
leads to, the event it adds to the job's history, and what it does to the indexes.

The scripts in ``store/lua`` carry it out; ``tests/test_lifecycle_table.py`` drives every
cell of this table against them on a real Redis, and the README quotes it
(``lifecycle_table_markdown``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from jobcore.model.states import State

#: A transition that leaves the state as it was.
SAME: Literal["same"] = "same"
#: A transition that deletes the job (record, effects, index entry, idempotency key).
DELETED: Literal["deleted"] = "deleted"


class Operation(StrEnum):
    CREATE = "create"
    CREATE_DELAYED = "create delayed"
    PROMOTE = "promote"
    START = "start"
    COMPLETE = "complete"
    RETRY = "retry after a failed attempt"
    FAIL = "fail"
    DELIVERY_CAP = "delivery cap"
    REQUEUE = "requeue on shutdown"
    CANCEL = "cancel"
    MANUAL_RETRY = "manual retry"
    RECOVER_ORPHAN = "orphan recovery"
    STALE_DELIVERY = "stale or duplicate delivery"
    RETENTION = "retention"
    PURGE = "purge"


class DueSet(StrEnum):
    """What a transition does to the job's entry in the due set (jobs waiting for a time,
    whose messages the promoter sends when it comes)."""

    ENTERS = "enters"
    LEAVES = "leaves"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Transition:
    operation: Operation
    sources: tuple[State, ...]
    target: State | Literal["same", "deleted"]
    #: The history event it adds (``None``: none).
    event: str | None
    due: DueSet
    #: What it is for, in a few words.
    note: str
    #: The script writes the job's message to its ready queue (its current generation).
    sends: bool = False


_PENDING = (State.WAITING, State.DELAYED, State.RETRYING)
_TERMINAL = (State.COMPLETED, State.FAILED, State.CANCELLED)

#: Every transition. The job's one index entry always follows its state: a transition to a
#: state moves it to the index of that state and type; a deletion removes it.
TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        Operation.CREATE,
        (),
        State.WAITING,
        "accepted",
        DueSet.UNCHANGED,
        "an immediate job, written with its ready-queue message by one script",
        sends=True,
    ),
    Transition(
        Operation.CREATE_DELAYED,
        (),
        State.DELAYED,
        "accepted",
        DueSet.ENTERS,
        "due at its runAt: it waits in the due set, with no message yet",
    ),
    Transition(
        Operation.PROMOTE,
        (State.DELAYED,),
        State.WAITING,
        None,
        DueSet.LEAVES,
        "its time came: the promoter sends its message",
        sends=True,
    ),
    Transition(
        Operation.PROMOTE,
        (State.RETRYING,),
        SAME,
        None,
        DueSet.LEAVES,
        "its backoff is over: the promoter sends its message",
        sends=True,
    ),
    Transition(
        Operation.START,
        (*_PENDING, State.ACTIVE),
        State.ACTIVE,
        "started",
        DueSet.LEAVES,
        "a worker starts the message's generation (from active: the owner was lost)",
    ),
    Transition(
        Operation.COMPLETE,
        (State.ACTIVE,),
        State.COMPLETED,
        "completed",
        DueSet.UNCHANGED,
        "the job returned",
    ),
    Transition(
        Operation.RETRY,
        (State.ACTIVE,),
        State.RETRYING,
        "attempt-failed",
        DueSet.ENTERS,
        "it raised with attempts left: due at nextAttemptAt, a new generation",
    ),
    Transition(
        Operation.FAIL,
        (State.ACTIVE,),
        State.FAILED,
        "dead-lettered",
        DueSet.UNCHANGED,
        "last attempt, permanent failure or needs a human check",
    ),
    Transition(
        Operation.DELIVERY_CAP,
        (*_PENDING, State.ACTIVE),
        State.FAILED,
        "dead-lettered",
        DueSet.LEAVES,
        "started maxDeliveries times without finishing",
    ),
    Transition(
        Operation.REQUEUE,
        (State.ACTIVE,),
        State.WAITING,
        "requeued",
        DueSet.UNCHANGED,
        "a graceful shutdown stopped it: not an attempt, a new generation, its message sent",
        sends=True,
    ),
    Transition(
        Operation.CANCEL,
        _PENDING,
        State.CANCELLED,
        "cancelled",
        DueSet.LEAVES,
        "by hand, before it starts",
    ),
    Transition(
        Operation.MANUAL_RETRY,
        (State.FAILED, State.CANCELLED),
        State.WAITING,
        "retried",
        DueSet.UNCHANGED,
        "by hand: attempts reset, history kept, a new generation, its message sent",
        sends=True,
    ),
    Transition(
        Operation.RECOVER_ORPHAN,
        (State.ACTIVE,),
        State.WAITING,
        "recovered",
        DueSet.UNCHANGED,
        "its owner stopped beating: a new generation, its message sent",
        sends=True,
    ),
    Transition(
        Operation.STALE_DELIVERY,
        (*_PENDING, State.ACTIVE, *_TERMINAL),
        SAME,
        None,
        DueSet.UNCHANGED,
        "a message of an older generation, or for a finished job: skipped",
    ),
    Transition(
        Operation.RETENTION,
        _TERMINAL,
        DELETED,
        None,
        DueSet.LEAVES,
        "finished longer ago than its retention",
    ),
    Transition(
        Operation.PURGE,
        (State.FAILED,),
        DELETED,
        None,
        DueSet.LEAVES,
        "dead letters deleted by hand",
    ),
)


def lifecycle_table_markdown() -> str:
    """``TRANSITIONS`` as the README shows it."""
    lines = [
        "| operation | from | to | history event | due set | message sent | what it is |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in TRANSITIONS:
        sources = ", ".join(f"`{s}`" for s in t.sources) or "—"
        target = {SAME: "(unchanged)", DELETED: "(deleted)"}.get(str(t.target), f"`{t.target}`")
        event = f"`{t.event}`" if t.event else "—"
        sends = "yes" if t.sends else "—"
        lines.append(
            f"| {t.operation} | {sources} | {target} | {event} | {t.due} | {sends} | {t.note} |"
        )
    return "\n".join(lines) + "\n"
