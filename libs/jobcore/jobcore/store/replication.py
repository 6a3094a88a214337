"""Acknowledged means replicated: what a write Jobcore relies on waits for, and when it
does not count.

With ``JOBCORE_MIN_REPLICAS_ACK`` = n > 0, an executor runs each ``Replicated`` call (the
create script, a side-effect reservation, the end of an attempt, a cancel) in one pipeline
with an ``INCR`` of ``keys.REPLICATION_MARK`` and ``WAIT n timeout`` behind it, on one
connection. ``WAIT`` is flagged ``noscript`` (it cannot run inside Lua) and counts the
replicas that processed this connection's writes; the mark makes that cover what the call
only read (a replayed job, a reservation found taken). Fewer than n confirmations in time →
``NotReplicated``, thrown into the operation, which may say more (``SubmissionNotConfirmed``).
``ReplicaAck.pipeline`` and ``ReplicaAck.reply`` hold all of it, so a synchronous and an
asynchronous executor differ only in how they send the pipeline.

Redis's own ``min-replicas-to-write`` is no substitute: it refuses writes while replicas are
missing, but a write it takes can still be lost with a primary that dies before sending it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError

from jobcore.errors import NotReplicated
from jobcore.settings import Settings
from jobcore.store import keys
from jobcore.store.calls import Commands
from jobcore.store.scripts import ScriptCall


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

    def pipeline(self, call: ScriptCall | Commands) -> tuple[tuple[Any, ...], ...]:
        """Every command of one confirmed call, for one pipeline (sync or async client):
        the script by ``EVALSHA`` (or the commands), then the confirmation."""
        if isinstance(call, ScriptCall):
            staged: tuple[tuple[Any, ...], ...] = (
                ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args),
            )
        else:
            staged = call.commands
        return staged + self.confirmation()

    @staticmethod
    def lacks_script(call: ScriptCall | Commands, replies: list[Any]) -> bool:
        """Redis did not have the script (load it, then run the pipeline again)."""
        return isinstance(call, ScriptCall) and isinstance(replies[0], NoScriptError)

    def reply(self, call: ScriptCall | Commands, replies: list[Any]) -> Any:
        """The call's reply from the pipeline's replies (run with ``raise_on_error=False``);
        a command's error is raised, and ``NotReplicated`` when ``WAIT`` counts too few."""
        *answers, _mark, acknowledged = replies
        for answer in (*answers, acknowledged):
            if isinstance(answer, Exception):
                raise answer
        reply = answers[0] if isinstance(call, ScriptCall) else answers
        count = int(acknowledged)
        if count < self.replicas:
            raise NotReplicated(count, self.replicas, reply)
        return reply


#: No replica confirmation: a single Redis.
NO_REPLICAS = ReplicaAck(0, 1)
