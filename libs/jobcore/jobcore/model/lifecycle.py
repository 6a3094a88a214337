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
    CLAIM = "claim"
    BEGIN = "begin"
    COMPLETE = "complete"
    RETRY = "retry after a failed attempt"
    FAIL = "fail"
    DELIVERY_CAP = "delivery cap"
    REQUEUE = "requeue on shutdown"
    RELEASE = "release on shutdown"
    CANCEL = "cancel"
    MANUAL_RETRY = "manual retry"
    RECOVER_LOST = "lost owner recovery"
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
_OWNED = (State.CLAIMED, State.ACTIVE)

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
        Operation.CLAIM,
        (*_PENDING, State.CLAIMED, State.ACTIVE),
        State.CLAIMED,
        None,
        DueSet.UNCHANGED,
        "a worker process fetches its message for a free thread (from claimed or active: "
        "the owner was lost); no delivery counted yet",
    ),
    Transition(
        Operation.BEGIN,
        (State.CLAIMED,),
        State.ACTIVE,
        "started",
        DueSet.UNCHANGED,
        "its attempt outlived a moment: the start recorder writes it and counts the delivery "
        "(an attempt that ends sooner is recorded as begun by its end)",
    ),
    Transition(
        Operation.COMPLETE,
        _OWNED,
        State.COMPLETED,
        "completed",
        DueSet.UNCHANGED,
        "the job returned",
    ),
    Transition(
        Operation.RETRY,
        _OWNED,
        State.RETRYING,
        "attempt-failed",
        DueSet.ENTERS,
        "it raised with attempts left: due at nextAttemptAt, a new generation",
    ),
    Transition(
        Operation.FAIL,
        _OWNED,
        State.FAILED,
        "dead-lettered",
        DueSet.UNCHANGED,
        "last attempt, permanent failure or needs a human check",
    ),
    Transition(
        Operation.DELIVERY_CAP,
        (*_PENDING, *_OWNED),
        State.FAILED,
        "dead-lettered",
        DueSet.LEAVES,
        "started maxDeliveries times without finishing (checked as it is claimed, or "
        "recovered from a lost owner)",
    ),
    Transition(
        Operation.REQUEUE,
        _OWNED,
        State.WAITING,
        "requeued",
        DueSet.UNCHANGED,
        "a graceful shutdown stopped it: not an attempt, a new generation, its message sent "
        "(the worker asks for it after a 1 s pause, through the due set)",
        sends=True,
    ),
    Transition(
        Operation.RELEASE,
        (State.CLAIMED,),
        State.WAITING,
        None,
        DueSet.UNCHANGED,
        "a stopping worker process gives back a message it will not start: same generation, "
        "back to the front of its queue, nothing counted",
        sends=True,
    ),
    Transition(
        Operation.CANCEL,
        (*_PENDING, State.CLAIMED),
        State.CANCELLED,
        "cancelled",
        DueSet.LEAVES,
        "by hand, before it starts (a claimed job's run stops before its first guarded "
        "effect, or is asked to stop; its end is dropped)",
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
        Operation.RECOVER_LOST,
        _OWNED,
        State.WAITING,
        "recovered",
        DueSet.UNCHANGED,
        "its owner died (its supervisor saw it exit) or stopped beating (a lost host): a new "
        "generation, its message sent",
        sends=True,
    ),
    Transition(
        Operation.STALE_DELIVERY,
        (*_PENDING, *_OWNED, *_TERMINAL),
        SAME,
        None,
        DueSet.UNCHANGED,
        "a message of an older generation, for a finished job, or for a job a live process "
        "holds: acked unrun by the claim",
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
