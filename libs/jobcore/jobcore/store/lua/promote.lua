-- promote.lua: the due set's promoter (run by the lease holder every ~100 ms): each job whose
-- time has come gets its message on its ready queue; a delayed job becomes waiting (a retrying
-- job stays retrying until it starts). An entry whose job is no longer pending just leaves.
-- KEYS[1] = due: the due set
-- ARGV[1] = now: epoch ms
-- ARGV[2] = limit: most jobs promoted in one call
-- Reply: {promoted, next}: how many were sent, and the score of the next entry still waiting
--   (epoch ms), or '' when the due set is empty
local ids = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, tonumber(limit))
local promoted = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', due, id)
  local job = k_job(id)
  local rec = load(job)
  if rec and PENDING[rec.state] then
    if rec.state == STATE.DELAYED then
      redis.call('HSET', job, 'state', STATE.WAITING)
      move_state(id, rec.type, rec.seq, STATE.DELAYED, STATE.WAITING)
    end
    send_message(job, id, rec, now)
    promoted = promoted + 1
  end
end
local next_entry = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
return {promoted, next_entry[2] or ''}
