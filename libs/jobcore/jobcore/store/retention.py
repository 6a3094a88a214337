"""Retention: terminal records past their retention are deleted, in bounded batches.

Completed and cancelled jobs go ``settings.retention`` after they finished, failed ones
(dead letters) ``settings.failed_retention`` after. Candidates come from the terminal
state-and-type indexes, oldest accepted first: a walk stops at the first job accepted after
the horizon (it, and every later one, finished after it too), so a run reads only what it
deletes plus the few old jobs that finished late. Each script call examines at most one
batch, so Redis is never blocked for long, and deletes each job whole — record, effects and
index entry — inside the script, so counts and listings never see half a job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

import redis

from jobcore.clock import now_ms
from jobcore.model.states import TERMINAL, State
from jobcore.settings import Settings
from jobcore.store import keys
from jobcore.store.connection import store_errors
from jobcore.store.scripts import PRELUDE

#: Jobs examined per script call.
DEFAULT_BATCH = 200

#: ARGV: state, type, now, retentionMs, batch, offset. Examines up to ``batch`` jobs of the
#: index oldest first, skipping ``offset`` kept ones, and returns {pruned, kept, done}. Kept =
#: accepted before the horizon but finished after it: they stay, and the caller skips them
#: with the offset. Done = the index has nothing more that could be due.
_PRUNE = r"""
local state, jtype, now, keep = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local batch, offset = tonumber(ARGV[5]), tonumber(ARGV[6])
local index = k_state_type(state, jtype)
local horizon = now - keep
local ids = redis.call('ZRANGE', index, offset, offset + batch - 1)
local pruned, kept = 0, 0
for _, id in ipairs(ids) do
  local v = redis.call('HMGET', k_job(id), 'state', 'createdAt', 'finishedAt')
  if v[1] ~= state then
    -- No record, or a record in another state: a stale entry, dropped.
    redis.call('ZREM', index, id)
  elseif (tonumber(v[2]) or 0) > horizon then
    return {pruned, kept, 1}
  elseif (tonumber(v[3]) or tonumber(v[2]) or 0) <= horizon then
    forget_idempotency_key(id)
    redis.call('DEL', k_job(id), k_effects(id))
    redis.call('ZREM', index, id)
    redis.call('ZREM', K_DUE, id)
    pruned = pruned + 1
  else
    kept = kept + 1
  end
end
return {pruned, kept, #ids < batch and 1 or 0}
"""


@dataclass(frozen=True)
class PruneReport:
    """What one pruning run did; ``complete`` is false when it stopped at its deadline."""

    pruned: int
    batches: int
    complete: bool


class RetentionPruner:
    """Deletes terminal records past their retention (see the module docstring)."""

    def __init__(self, client: redis.Redis, settings: Settings, batch: int = DEFAULT_BATCH) -> None:
        self.client = client
        self.retention_ms = int(settings.retention * 1000)
        self.failed_retention_ms = int(settings.failed_retention * 1000)
        self.batch = batch
        self._prune = client.register_script(PRELUDE + _PRUNE)

    def retention_ms_of(self, state: str) -> int:
        return self.failed_retention_ms if state == State.FAILED else self.retention_ms

    def prune_batch(
        self, state: str, job_type: str, now: int, offset: int = 0
    ) -> tuple[int, int, bool]:
        """(pruned, kept, done) for one batch of one index after ``offset`` kept jobs."""
        retention = self.retention_ms_of(state)
        args: list[str | int] = [state, job_type, now, retention, self.batch, offset]
        with store_errors():
            pruned, kept, done = self._prune(keys=[], args=args)
        return int(pruned), int(kept), bool(done)

    def prune(self, now: int | None = None, *, deadline: float | None = None) -> PruneReport:
        """Every terminal index in turn, batch after batch, until none has anything due or
        ``time.monotonic()`` passes ``deadline``."""
        at = now_ms() if now is None else now
        with store_errors():
            job_types = sorted(cast(set[str], self.client.smembers(keys.TYPES)))
        pruned = batches = 0
        for state in TERMINAL:
            for job_type in job_types:
                offset, done = 0, False
                while not done:
                    if deadline is not None and batches and time.monotonic() >= deadline:
                        return PruneReport(pruned, batches, complete=False)
                    gone, kept, done = self.prune_batch(state, job_type, at, offset)
                    pruned, batches, offset = pruned + gone, batches + 1, offset + kept
        return PruneReport(pruned, batches, complete=True)
