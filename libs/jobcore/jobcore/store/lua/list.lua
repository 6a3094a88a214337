-- list.lua: up to ``count`` job ids with their sequence numbers, past ``bound``, merged from
-- the state-and-type indexes the filters span (one index when both are given).
-- KEYS[1] = types: the set of accepted types (the indexes to merge without a type)
-- ARGV[1] = state: a state, or '' for every state
-- ARGV[2] = job_type: a type, or '' for every type
-- ARGV[3] = bound: '(N', '+inf' or '-inf'
-- ARGV[4] = count: most ids
-- ARGV[5] = order: 'desc' (newest first) or 'asc'
-- Reply: {id, seq, id, seq, ...}
local desc = order == 'desc'
local limit = tonumber(count)
local states = state ~= '' and {state} or ALL_STATES
local job_types = job_type ~= '' and {job_type} or redis.call('SMEMBERS', types)
local indexes = {}
for _, s in ipairs(states) do
  for _, t in ipairs(job_types) do indexes[#indexes + 1] = k_state_type(s, t) end
end
local found = {}
for _, index in ipairs(indexes) do
  local page
  if desc then
    page = redis.call('ZREVRANGEBYSCORE', index, bound, '-inf', 'WITHSCORES', 'LIMIT', 0, limit)
  else
    page = redis.call('ZRANGEBYSCORE', index, bound, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
  end
  for i = 1, #page, 2 do found[#found + 1] = {page[i], tonumber(page[i + 1])} end
end
if #indexes > 1 then
  table.sort(found, function(a, b)
    if desc then return a[2] > b[2] end
    return a[2] < b[2]
  end)
end
local out = {}
for i = 1, math.min(limit, #found) do
  out[#out + 1] = found[i][1]
  out[#out + 1] = string.format('%d', found[i][2])
end
return out
