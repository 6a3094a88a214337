-- start.lua: a worker starts one generation of a job: waiting, delayed or retrying (or active
-- under a lost owner, a redelivery) becomes active under this worker. Stale and duplicate
-- messages are refused; past its delivery cap the job fails instead.
-- KEYS[1] = job: the record's hash
-- KEYS[2] = due: the due set
-- ARGV[1] = job_id
-- ARGV[2] = generation: the generation the message was sent for
-- ARGV[3] = worker_id: the worker process starting it (the record's owner)
-- ARGV[4] = now: epoch ms
-- ARGV[5] = delivery_cap_reason: the failedReason past the cap (%d = deliveries)
-- Reply: {'started', attempt, maxAttempts, payload, backoff, traceparent, type}
--   | {'missing'} | {'terminal', state} | {'stale', generation} | {'busy', owner}
--   | {'dead', reason}
local rec = load(job)
if not rec then return {'missing'} end
if TERMINAL[rec.state] then return {'terminal', rec.state} end
if rec.generation ~= tonumber(generation) then return {'stale', tostring(rec.generation)} end
local redelivered = rec.state == STATE.ACTIVE
if redelivered and owner_alive(rec) then return {'busy', rec.owner} end
local deliveries = rec.deliveries + 1
if deliveries > rec.maxDeliveries then
  local reason = string.format(delivery_cap_reason, rec.deliveries)
  -- A redelivered job's last attempt was cut short by a crash: its number is given back.
  local attempts = redelivered and math.max(rec.attempts - 1, 0) or rec.attempts
  finish(job, due, job_id, rec, STATE.FAILED, now,
    {'failedReason', reason, 'failure', FAILURE.DELIVERY_CAP, 'attempts', attempts})
  add_event(job, {at = tonumber(now), event = 'dead-lettered', reason = reason})
  return {'dead', reason}
end
-- ``attempts`` counts attempts started; a redelivery replaces a crashed attempt, whose
-- number it takes over.
local attempt = redelivered and math.max(rec.attempts, 1) or rec.attempts + 1
redis.call('HSET', job, 'state', STATE.ACTIVE, 'owner', worker_id, 'deliveries', deliveries,
  'processedAt', now, 'attempts', attempt)
redis.call('HDEL', job, 'nextAttemptAt')
move_state(job_id, rec.type, rec.seq, rec.state, STATE.ACTIVE)
redis.call('ZREM', due, job_id)
local event = {at = tonumber(now), event = 'started', attempt = attempt, delivery = deliveries,
  worker = worker_id}
if redelivered then event.redelivered = true end
add_event(job, event)
local v = redis.call('HMGET', job, 'payload', 'backoff', 'traceparent')
return {'started', tostring(attempt), tostring(rec.maxAttempts), v[1], v[2] or '', v[3] or '',
  rec.type}
