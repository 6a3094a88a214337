"""Retention: terminal records past their retention are deleted, in bounded batches.

Completed and cancelled jobs go ``settings.retention`` after they finished, failed ones
(dead letters) ``settings.failed_retention`` after. Candidates come from ``keys.FINISHED``
(scored by finishedAt); each script call examines at most one batch, so Redis is never
blocked for long, and deletes each job whole — record, history, effects and every index
entry — inside the script, so counts and listings never see half a job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from jobcore.clock import now_ms
from jobcore.redis_connection import store_errors
from jobcore.settings import Settings
from jobcore.store_scripts import PRELUDE

#: Jobs examined per script call.
DEFAULT_BATCH = 200

#: ARGV: now, retentionMs, failedRetentionMs, batch, offset. Examines up to ``batch``
#: finished jobs older than the shorter retention, skipping ``offset`` kept ones, and
#: returns {pruned, kept, examined}. Kept = failed jobs inside their longer retention (or
#: the reverse): they stay in place, so the caller skips them with the offset.
_PRUNE = r"""
local now, keep, keep_failed = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local batch, offset = tonumber(ARGV[4]), tonumber(ARGV[5])
local horizon = now - math.min(keep, keep_failed)
local found = redis.call('ZRANGEBYSCORE', K_FINISHED, '-inf', horizon, 'WITHSCORES',
  'LIMIT', offset, batch)
local pruned, kept = 0, 0
for i = 1, #found, 2 do
  local id, finished_at = found[i], tonumber(found[i + 1])
  local v = redis.call('HMGET', k_job(id), 'state', 'type')
  local state, jtype = v[1], v[2]
  if not state or not TERMINAL[state] then
    -- No record, or a job no longer terminal: nothing to prune, drop the stale entry.
    redis.call('ZREM', K_FINISHED, id)
  else
    local retention = state == 'failed' and keep_failed or keep
    if finished_at <= now - retention then
      redis.call('DEL', k_job(id), k_events(id), k_effects(id))
      redis.call('ZREM', K_ALL, id)
      redis.call('ZREM', k_type(jtype), id)
      redis.call('ZREM', k_state(state), id)
      redis.call('ZREM', k_state_type(state, jtype), id)
      redis.call('ZREM', K_DUE, id)
      redis.call('ZREM', K_FINISHED, id)
      pruned = pruned + 1
    else
      kept = kept + 1
    end
  end
end
return {pruned, kept, #found / 2}
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

    def prune_batch(self, now: int, offset: int = 0) -> tuple[int, int, int]:
        """(pruned, kept, examined) for one batch after ``offset`` kept jobs."""
        args = [now, self.retention_ms, self.failed_retention_ms, self.batch, offset]
        with store_errors():
            pruned, kept, examined = self._prune(keys=[], args=args)
        return int(pruned), int(kept), int(examined)

    def prune(self, now: int | None = None, *, deadline: float | None = None) -> PruneReport:
        """Batch after batch until none is left or ``time.monotonic()`` passes ``deadline``."""
        at = now_ms() if now is None else now
        pruned = batches = offset = 0
        while True:
            gone, kept, examined = self.prune_batch(at, offset)
            pruned, batches, offset = pruned + gone, batches + 1, offset + kept
            if examined < self.batch:
                return PruneReport(pruned, batches, complete=True)
            if deadline is not None and time.monotonic() >= deadline:
                return PruneReport(pruned, batches, complete=False)
