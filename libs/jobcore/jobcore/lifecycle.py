"""The job states and which operations each one allows (DESIGN.md, "Job lifecycle")."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    WAITING = "waiting"
    DELAYED = "delayed"
    ACTIVE = "active"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ALL_STATES: tuple[str, ...] = tuple(s.value for s in State)
#: States a job never leaves on its own.
TERMINAL: tuple[str, ...] = (State.COMPLETED, State.FAILED, State.CANCELLED)
#: States from which a job may be cancelled.
CANCELLABLE: tuple[str, ...] = (State.WAITING, State.DELAYED, State.RETRYING)
#: States from which a job may be retried by hand.
RETRYABLE: tuple[str, ...] = (State.FAILED, State.CANCELLED)
#: States in which a job waits for a message to start it.
PENDING: tuple[str, ...] = (State.WAITING, State.DELAYED, State.RETRYING)


def lua_state_sets() -> str:
    """Lua tables of the state groups, so scripts and Python share one definition."""

    def table(name: str, states: tuple[str, ...]) -> str:
        return f"local {name} = {{" + ", ".join(f'["{s}"]=true' for s in states) + "}"

    return (
        "\n".join(
            [
                table("TERMINAL", TERMINAL),
                table("CANCELLABLE", CANCELLABLE),
                table("RETRYABLE", RETRYABLE),
                table("PENDING", PENDING),
                "local ALL_STATES = {" + ", ".join(f'"{s}"' for s in ALL_STATES) + "}",
            ]
        )
        + "\n"
    )
