-- cancel.lua: a job that has not started (waiting, delayed, retrying, or claimed by a worker
-- process that has not recorded its start) is cancelled; a claimed job's run is asked to
-- stop and its end is not recorded.
-- KEYS[1] = job: the record's hash
-- KEYS[2] = due: the due set
-- ARGV[1] = job_id
-- ARGV[2] = now: epoch ms
-- Reply: {'cancelled'} | {'missing'} | {'invalid', state}
local rec = load(job)
if not rec then return {'missing'} end
if not CANCELLABLE[rec.state] then return {'invalid', rec.state} end
finish(job, due, job_id, rec, STATE.CANCELLED, now, {})
add_event(job, {at = tonumber(now), event = 'cancelled', from = rec.state})
return {'cancelled'}
