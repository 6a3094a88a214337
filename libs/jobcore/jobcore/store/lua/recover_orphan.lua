-- recover_orphan.lua: an active job whose owner is gone goes back to waiting with a new
-- generation, its message sent. The crashed attempt never ended: its number is
-- given back (the delivery stays counted).
-- KEYS[1] = job: the record's hash
-- KEYS[2] = due: the due set
-- ARGV[1] = job_id
-- ARGV[2] = now: epoch ms
-- ARGV[3] = owner: the owner that was lost, or '' for whichever owner no longer beats
-- Reply: {'recovered'} | {'alive'}
local rec = load(job)
if not rec or rec.state ~= STATE.ACTIVE then return {'alive'} end
if owner ~= '' then
  if rec.owner ~= owner then return {'alive'} end
elseif owner_alive(rec) then
  return {'alive'}
end
redis.call('HSET', job, 'state', STATE.WAITING, 'generation', rec.generation + 1,
  'attempts', math.max(rec.attempts - 1, 0))
redis.call('HDEL', job, 'owner')
move_state(job_id, rec.type, rec.seq, STATE.ACTIVE, STATE.WAITING)
redis.call('ZREM', due, job_id)
add_event(job, {at = tonumber(now), event = 'recovered',
  reason = 'worker ' .. (rec.owner or '?') .. ' was lost'})
send_message(job, job_id, rec, now)
return {'recovered'}
