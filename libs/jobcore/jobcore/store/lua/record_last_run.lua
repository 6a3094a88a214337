-- record_last_run.lua: a schedule fired; keep its newest fire time and the job it made (a
-- late tick of an older minute never hides a newer run).
-- KEYS[1] = last_run: the schedule's last-run hash
-- ARGV[1] = fire_time_ms: the nominal fire time (epoch ms)
-- ARGV[2] = job_id: the job it made
-- Reply: 1 when recorded, 0 when a newer run was already there
local current = redis.call('HGET', last_run, 'fireTime')
if current and tonumber(current) > tonumber(fire_time_ms) then return 0 end
redis.call('HSET', last_run, 'fireTime', fire_time_ms, 'jobId', job_id)
return 1
