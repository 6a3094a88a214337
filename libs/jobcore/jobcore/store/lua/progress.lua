-- progress.lua: the owner of an active job reports its progress (0-100).
-- KEYS[1] = job: the record's hash
-- ARGV[1] = worker_id: the reporting worker
-- ARGV[2] = progress: 0-100
-- Reply: 1 when recorded, 0 when the job is not active under this worker
local v = redis.call('HMGET', job, 'state', 'owner')
if v[1] ~= STATE.ACTIVE or v[2] ~= worker_id then return 0 end
redis.call('HSET', job, 'progress', progress)
return 1
