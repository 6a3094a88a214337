-- recover_due.lua: a pending job whose message should have been in a ready queue for longer
-- than the margin gets a new generation (the caller sends its message).
-- KEYS[1] = job: the record's hash
-- KEYS[2] = due: the due set
-- ARGV[1] = job_id
-- ARGV[2] = now: epoch ms
-- ARGV[3] = margin_ms: how overdue it must be
-- Reply: {'recovered', generation, queue, type} | {'not-due'} | {'gone'}
local at = tonumber(now)
local due_at = redis.call('ZSCORE', due, job_id)
if not due_at or tonumber(due_at) > at - tonumber(margin_ms) then return {'not-due'} end
local rec = load(job)
if not rec or not PENDING[rec.state] then
  redis.call('ZREM', due, job_id)
  return {'gone'}
end
redis.call('HSET', job, 'generation', rec.generation + 1)
redis.call('ZADD', due, at, job_id)
add_event(job, {at = at, event = 'recovered', reason = 'message did not reach a ready queue'})
return {'recovered', tostring(rec.generation + 1), rec.queue, rec.type}
