-- stats.lua: ready-queue depths, and per type ever accepted its count in each state.
-- KEYS[1] = types: the set of accepted types
-- KEYS[2...] = ready_queues: the ready lists whose lengths are the queue depths
-- Reply: {depth per ready queue..., then per type: type, count per state of ALL_STATES...}
local out = {}
for _, key in ipairs(ready_queues) do out[#out + 1] = redis.call('LLEN', key) end
for _, t in ipairs(redis.call('SMEMBERS', types)) do
  out[#out + 1] = t
  for _, s in ipairs(ALL_STATES) do out[#out + 1] = redis.call('ZCARD', k_state_type(s, t)) end
end
return out
