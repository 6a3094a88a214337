-- progress.lua: the owner of a claimed or active job reports its progress (0-100).
-- KEYS[1] = job: the record's hash
-- ARGV[1] = worker_id: the reporting worker
-- ARGV[2] = progress: 0-100
-- Reply: 1 when recorded, 0 when the job is not this worker's
local v = redis.call('HMGET', job, 'state', 'owner')
if not OWNED[v[1]] or v[2] ~= worker_id then return 0 end
redis.call('HSET', job, 'progress', progress)
return 1
