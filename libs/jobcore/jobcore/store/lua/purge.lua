-- purge.lua: delete a job in one of the allowed states entirely: record, effects, index
-- entry, due entry and the idempotency key that still names it.
-- KEYS[1] = job: the record's hash
-- KEYS[2] = effects: the job's effect reservations
-- KEYS[3] = due: the due set
-- ARGV[1] = job_id
-- ARGV[2] = states: the states it may be deleted from, comma-separated
-- Reply: 1 when deleted, 0 otherwise
local rec = load(job)
if not rec then return 0 end
if not string.find(',' .. states .. ',', ',' .. rec.state .. ',', 1, true) then return 0 end
forget_idempotency_key(job, job_id)
redis.call('DEL', job, effects)
redis.call('ZREM', k_state_type(rec.state, rec.type), job_id)
redis.call('ZREM', due, job_id)
return 1
