-- renew_lease.lua: take a named lease, or renew it when this holder has it.
-- KEYS[1] = lease: the lease's key
-- ARGV[1] = holder: the process asking
-- ARGV[2] = ttl_ms: how long the lease lives unless renewed
-- Reply: 1 when this holder has the lease, 0 otherwise
if redis.call('GET', lease) == holder then
  return redis.call('PEXPIRE', lease, ttl_ms)
end
return redis.call('SET', lease, holder, 'NX', 'PX', ttl_ms) and 1 or 0
