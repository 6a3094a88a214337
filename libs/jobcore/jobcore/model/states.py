"""The job states and which operations each one allows (DESIGN.md, "Job lifecycle")."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    WAITING = "waiting"
    DELAYED = "delayed"
    #: Fetched by a worker process, which has a free thread for it; not started yet as far
    #: as the record knows (no delivery counted), and still cancellable.
    CLAIMED = "claimed"
    ACTIVE = "active"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AttemptOutcome(StrEnum):
    """How one attempt ended; what the worker records, counts and puts on the span."""

    #: The job returned: ``completed``.
    COMPLETED = "completed"
    #: It raised with attempts left: ``retrying`` after its backoff.
    RETRYING = "retrying"
    #: It raised on its last attempt: a dead letter.
    FAILED = "failed"
    #: It raised ``PermanentError`` (or an exception its type never retries): a dead letter
    #: at once, whatever attempts were left.
    FAILED_PERMANENTLY = "failed-permanently"
    #: A guarded effect may have happened: a dead letter that a human must check.
    NEEDS_HUMAN_CHECK = "needs-human-check"
    #: A graceful shutdown stopped it: back to ``waiting``, not counted as an attempt.
    REQUEUED = "requeued"


class FailureKind(StrEnum):
    """Why a dead letter failed (the record's ``failure`` field); bulk retries skip some."""

    #: Its attempts were used up.
    EXHAUSTED = "exhausted"
    #: Retrying cannot help (``PermanentError``).
    PERMANENT = "permanent"
    #: A guarded effect may have happened; retrying could repeat it.
    HUMAN_CHECK = "human-check"
    #: It kept killing its worker (``maxDeliveries`` starts without an end).
    DELIVERY_CAP = "delivery-cap"


#: The dead-letter kind each failing outcome records.
FAILURE_OF_OUTCOME: dict[AttemptOutcome, FailureKind] = {
    AttemptOutcome.FAILED: FailureKind.EXHAUSTED,
    AttemptOutcome.FAILED_PERMANENTLY: FailureKind.PERMANENT,
    AttemptOutcome.NEEDS_HUMAN_CHECK: FailureKind.HUMAN_CHECK,
}
#: The state an attempt's end leaves its record in (a requeue's ``waiting`` is left out: a
#: job there may already be another worker's).
STATE_OF_OUTCOME: dict[AttemptOutcome, State] = {
    AttemptOutcome.COMPLETED: State.COMPLETED,
    AttemptOutcome.RETRYING: State.RETRYING,
    **{outcome: State.FAILED for outcome in FAILURE_OF_OUTCOME},
}


ALL_STATES: tuple[str, ...] = tuple(s.value for s in State)
#: States a job never leaves on its own.
TERMINAL: tuple[str, ...] = (State.COMPLETED, State.FAILED, State.CANCELLED)
#: States from which a job may be cancelled.
CANCELLABLE: tuple[str, ...] = (State.WAITING, State.DELAYED, State.RETRYING, State.CLAIMED)
#: States from which a job may be retried by hand.
RETRYABLE: tuple[str, ...] = (State.FAILED, State.CANCELLED)
#: States in which a job waits for a message to start it.
PENDING: tuple[str, ...] = (State.WAITING, State.DELAYED, State.RETRYING)
#: States in which a job belongs to a worker process (the record's ``owner``).
OWNED: tuple[str, ...] = (State.CLAIMED, State.ACTIVE)


def lua_prelude() -> str:
    """The states, their groups, the attempt outcomes and failure kinds as Lua constants, so
    scripts and Python share one vocabulary (``STATE.ACTIVE`` is ``"active"``)."""

    def members(name: str, enum: type[StrEnum]) -> str:
        pairs = ", ".join(f'{member.name}="{member.value}"' for member in enum)
        return f"local {name} = {{{pairs}}}"

    def group(name: str, states: tuple[str, ...]) -> str:
        return f"local {name} = {{" + ", ".join(f'["{s}"]=true' for s in states) + "}"

    failure_of = ", ".join(f'["{o}"]="{k}"' for o, k in FAILURE_OF_OUTCOME.items())
    return (
        "\n".join(
            [
                members("STATE", State),
                members("OUTCOME", AttemptOutcome),
                members("FAILURE", FailureKind),
                f"local FAILURE_OF_OUTCOME = {{{failure_of}}}",
                group("TERMINAL", TERMINAL),
                group("CANCELLABLE", CANCELLABLE),
                group("RETRYABLE", RETRYABLE),
                group("PENDING", PENDING),
                group("OWNED", OWNED),
                "local ALL_STATES = {" + ", ".join(f'"{s}"' for s in ALL_STATES) + "}",
            ]
        )
        + "\n"
    )
