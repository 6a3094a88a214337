-- prune.lua: retention. Examines up to ``batch`` jobs of one terminal index, oldest first,
-- skipping ``offset`` kept ones; deletes each job past its retention whole (record,
-- effects, index entry, due entry, idempotency key). Kept = accepted before the horizon but
-- finished after it: they stay, and the caller skips them with the offset.
-- KEYS[1] = index: the state-and-type index walked
-- KEYS[2] = due: the due set
-- ARGV[1] = state: the index's state
-- ARGV[2] = now: epoch ms
-- ARGV[3] = retention_ms: how long a finished job of this state is kept
-- ARGV[4] = batch: most jobs examined
-- ARGV[5] = offset: kept jobs to skip
-- Reply: {pruned, kept, done}; done = 1 when the index has nothing more that could be due
local horizon = tonumber(now) - tonumber(retention_ms)
local size, skip = tonumber(batch), tonumber(offset)
local ids = redis.call('ZRANGE', index, skip, skip + size - 1)
local pruned, kept = 0, 0
for _, id in ipairs(ids) do
  local job = k_job(id)
  local v = redis.call('HMGET', job, 'state', 'createdAt', 'finishedAt')
  if v[1] ~= state then
    -- No record, or a record in another state: a stale entry, dropped.
    redis.call('ZREM', index, id)
  elseif (tonumber(v[2]) or 0) > horizon then
    return {pruned, kept, 1}
  elseif (tonumber(v[3]) or tonumber(v[2]) or 0) <= horizon then
    forget_idempotency_key(job, id)
    redis.call('DEL', job, k_effects(id))
    redis.call('ZREM', index, id)
    redis.call('ZREM', due, id)
    pruned = pruned + 1
  else
    kept = kept + 1
  end
end
return {pruned, kept, #ids < size and 1 or 0}
