-- recover_lost.lua: jobs of worker processes that are gone go back to ``waiting`` with a new
-- generation and their message (``release_lost``): those of ``owner`` at once when its
-- supervisor saw it exit, or, with ``owner`` '', those of every owner whose presence expired
-- (a lost host; run by the sweeper). For a named owner its presence goes, and the messages
-- Dramatiq still counts as fetched by it are dropped (their jobs have new ones; any other goes back to its queue,
-- as Dramatiq's maintenance would do).
-- KEYS[1] = types: the set of accepted types
-- KEYS[2] = due: the due set
-- KEYS[3] = heartbeats: Dramatiq's broker heartbeats
-- KEYS[4] = workers: the live processes by last heartbeat
-- ARGV[1] = owner: the process that died, or '' for every owner no longer present
-- ARGV[2] = now: epoch ms
-- ARGV[3] = delivery_cap_reason: the failedReason past the cap (%d = deliveries)
-- ARGV[4] = limit: most jobs recovered in one call
-- Reply: the ids of the jobs recovered (or dead-lettered at their delivery cap)
local recovered, was_recovered = {}, {}
local alive = {}
local function gone(who)
  if owner ~= '' then return who == owner end
  if not who then return true end
  if alive[who] == nil then alive[who] = redis.call('EXISTS', k_worker(who)) == 1 end
  return not alive[who]
end
for _, jtype in ipairs(redis.call('SMEMBERS', types)) do
  for _, state in ipairs({STATE.CLAIMED, STATE.ACTIVE}) do
    for _, id in ipairs(redis.call('ZRANGE', k_state_type(state, jtype), 0, -1)) do
      if #recovered >= tonumber(limit) then return recovered end
      local job = k_job(id)
      local rec = load(job)
      if rec and OWNED[rec.state] and gone(rec.owner) then
        release_lost(job, due, id, rec, now, delivery_cap_reason)
        recovered[#recovered + 1] = id
        was_recovered[id] = true
      end
    end
  end
end
if owner ~= '' then
  local prefix = k_acks_of(owner)
  for _, acks in ipairs(redis.call('KEYS', prefix .. '*')) do
    local queue = string.sub(acks, #prefix + 2)
    local messages = k_messages(queue)
    for _, message_id in ipairs(redis.call('SMEMBERS', acks)) do
      local body = redis.call('HGET', messages, message_id)
      local ok, message = pcall(cjson.decode, body or '')
      if ok and type(message) == 'table' and was_recovered[tostring(message.message_id)] then
        redis.call('HDEL', messages, message_id)
      elseif body then
        redis.call('RPUSH', k_ready(queue), message_id)
      end
    end
    redis.call('DEL', acks)
    redis.call('DEL', k_last_claim(owner, queue))
  end
  redis.call('ZREM', heartbeats, owner)
  redis.call('DEL', k_worker(owner))
  redis.call('ZREM', workers, owner)
end
return recovered
