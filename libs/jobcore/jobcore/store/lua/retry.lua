-- retry.lua: a failed or cancelled job goes back to waiting by hand (attempts reset, history
-- kept, a new generation, its message sent); with reset_effects its unfinished effect
-- reservations are cleared. A dead letter whose failure kind is listed in leave_failures is left alone.
-- KEYS[1] = job: the record's hash
-- KEYS[2] = effects: the job's effect reservations
-- KEYS[3] = due: the due set
-- ARGV[1] = job_id
-- ARGV[2] = now: epoch ms
-- ARGV[3] = reset_effects: '1' or '0'
-- ARGV[4] = leave_failures: failure kinds to leave alone, comma-separated, or ''
-- ARGV[5] = link: the W3C traceparent of the request that asked, for the attempt to link, or ''
-- Reply: {'waiting'} | {'skipped', failureKind} | {'missing'}
--   | {'invalid', state}
local rec = load(job)
if not rec then return {'missing'} end
if not RETRYABLE[rec.state] then return {'invalid', rec.state} end
local kind = redis.call('HGET', job, 'failure')
if not kind and redis.call('HGET', job, 'humanCheck') == '1' then kind = FAILURE.HUMAN_CHECK end
if kind and string.find(',' .. leave_failures .. ',', ',' .. kind .. ',', 1, true) then
  return {'skipped', kind}
end
redis.call('HSET', job, 'state', STATE.WAITING, 'attempts', 0, 'deliveries', 0, 'progress', 0,
  'generation', rec.generation + 1, 'link', link)
redis.call('HDEL', job, 'failedReason', 'finishedAt', 'result', 'nextAttemptAt', 'owner',
  'processedAt', 'lastError', 'failure', 'humanCheck')
move_state(job_id, rec.type, rec.seq, rec.state, STATE.WAITING)
redis.call('ZREM', due, job_id)
local cleared = 0
if reset_effects == '1' then
  local reservations = redis.call('HGETALL', effects)
  for i = 1, #reservations, 2 do
    local reservation = cjson.decode(reservations[i + 1])
    if reservation.status ~= 'done' then
      redis.call('HDEL', effects, reservations[i])
      cleared = cleared + 1
    end
  end
end
add_event(job, {at = tonumber(now), event = 'retried', from = rec.state,
  effects = reset_effects == '1' and 'reset' or 'keep', clearedEffects = cleared})
send_message(job, job_id, rec, now)
return {STATE.WAITING}
