"""Acknowledged means replicated: what a write Jobcore relies on waits for, and when it
does not count.

With ``JOBCORE_MIN_REPLICAS_ACK`` = n > 0, an executor runs each ``Replicated`` call (the
create script, a side-effect reservation, the end of an attempt, a cancel) in one pipeline
with an ``INCR`` of ``keys.REPLICATION_MARK`` and ``WAIT n timeout`` behind it, on one
connection. ``WAIT`` is flagged ``noscript`` (it cannot run inside Lua) and counts the
replicas that processed this connection's writes; the mark makes that cover what the call
only read (a replayed job, a reservation found taken). Fewer than n confirmations in time →
``NotReplicated``, thrown into the operation, which may say more (``SubmissionNotConfirmed``).
One confirmation covers every call of a pipeline (``Executor.run_many`` sends many).
``ReplicaAck`` says what to send and how to read the replies; the executor sends them.

Redis's own ``min-replicas-to-write`` is no substitute: it refuses writes while replicas are
missing, but a write it takes can still be lost with a primary that dies before sending it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobcore.errors import NotReplicated
from jobcore.settings import Settings
from jobcore.store import keys


@dataclass(frozen=True)
class ReplicaAck:
    """How many replicas must confirm a ``Replicated`` call, and how long to wait for them."""

    replicas: int
    timeout_ms: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplicaAck:
        # WAIT 0 ms waits forever: never ask for that.
        return cls(settings.min_replicas_ack, max(1, round(settings.replica_ack_timeout * 1000)))

    @property
    def required(self) -> bool:
        return self.replicas > 0

    def confirmation(self) -> tuple[tuple[Any, ...], ...]:
        """The commands that follow the call on its connection."""
        return (("INCR", keys.REPLICATION_MARK), ("WAIT", self.replicas, self.timeout_ms))

    def acknowledged(self, replies: list[Any]) -> int:
        """How many replicas confirmed, from the replies of ``confirmation`` (run with
        ``raise_on_error=False``); an error among them is raised."""
        for answer in replies:
            if isinstance(answer, Exception):
                raise answer
        return int(replies[-1])

    def shortfall(self, acknowledged: int, reply: Any) -> NotReplicated | None:
        """``NotReplicated`` for a call whose ``reply`` too few replicas confirmed."""
        if acknowledged < self.replicas:
            return NotReplicated(acknowledged, self.replicas, reply)
        return None


#: No replica confirmation: a single Redis.
NO_REPLICAS = ReplicaAck(0, 1)
