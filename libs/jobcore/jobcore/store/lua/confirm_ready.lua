-- confirm_ready.lua: the job's message reached a ready queue, so the sweeper need not watch
-- it; a delayed job whose message was moved to its ready queue becomes waiting.
-- KEYS[1] = job: the record's hash
-- KEYS[2] = due: the due set
-- ARGV[1] = job_id
-- ARGV[2] = generation: the generation the message was sent for
-- Reply: {'ready'} | {'stale'}
local rec = load(job)
if not rec or rec.generation ~= tonumber(generation) then return {'stale'} end
redis.call('ZREM', due, job_id)
if rec.state == STATE.DELAYED then
  redis.call('HSET', job, 'state', STATE.WAITING)
  move_state(job_id, rec.type, rec.seq, STATE.DELAYED, STATE.WAITING)
end
return {'ready'}
