-- claim.lua: a worker process's fetch from one queue: Dramatiq's fetch (pop message ids into
-- this process's acks set, its heartbeat) and Dramatiq's maintenance, which only runs inside
-- fetches (requeue the unacked messages of processes silent past the heartbeat timeout,
-- expire old dead-lettered messages), plus Jobcore's claim: each fetched job becomes
-- `claimed` by this process, and what the worker needs from its record comes back with its
-- message. Messages it must not run (a stale generation, a finished or missing job, a job
-- claimed or active under a live owner) are acked here and not returned; a job past its
-- delivery cap is dead-lettered instead. A claim charges no delivery: the attempt's first
-- write does (``begin.lua``, or ``finish.lua``).
-- KEYS[1] = ready_queue: the queue's list of ready message ids
-- KEYS[2] = messages: the queue's message bodies
-- KEYS[3] = acks: this process's fetched-but-unacked ids for the queue
-- KEYS[4] = heartbeats: Dramatiq's broker heartbeats
-- KEYS[5] = dead_queue: the queue's dead-lettered message ids (Dramatiq's .XQ)
-- KEYS[6] = dead_messages: their bodies
-- KEYS[7] = due: the due set
-- KEYS[8] = last_claim: this process's last claim from the queue (its token and messages)
-- ARGV[1] = now: epoch ms
-- ARGV[2] = worker_id: this process (its Jobcore presence id, also its broker id)
-- ARGV[3] = queue: the queue's name
-- ARGV[4] = count: most messages to fetch (this process's free threads)
-- ARGV[5] = token: names this claim ('' to remember nothing)
-- ARGV[6] = received: the token of the last claim whose reply reached the process, when a
--   later one's did not ('' otherwise): a last claim of another token was never received,
--   and its messages go back to the queue first
-- ARGV[7] = heartbeat_timeout_ms: Dramatiq's: after this a silent process's messages return
-- ARGV[8] = maintenance: '1' to run Dramatiq's maintenance in this call
-- ARGV[9] = dead_message_ttl_ms: Dramatiq's: how long a dead-lettered message is kept
-- ARGV[10] = delivery_cap_reason: the failedReason past the cap (%d = deliveries)
-- Reply: {claimed, skipped}: claimed holds six entries per claimed message (body, attempt,
--   maxAttempts, payload, backoff, type; a message that is not Jobcore's: body and five ''),
--   skipped two per message acked here (job id, why: missing, terminal, stale, busy, dead)
local at = tonumber(now)
redis.call('ZADD', heartbeats, now, worker_id)

-- Settle a claim whose reply was lost: the process never got its messages. (The last claim
-- is remembered only while it holds messages, so it is always the latest claim that ran.)
if received ~= '' then
  local last = redis.call('GET', last_claim)
  if last then
    local ok, claim = pcall(cjson.decode, last)
    if ok and type(claim) == 'table' and tostring(claim.token) ~= received then
      for _, m in ipairs(claim.messages or {}) do
        release_message(ready_queue, messages, acks, worker_id, queue, m[1], m[2], m[3])
      end
    end
  end
end

if maintenance == '1' then
  local dead = redis.call('ZRANGEBYSCORE', heartbeats, 0, at - tonumber(heartbeat_timeout_ms))
  for _, dead_worker in ipairs(dead) do
    local dead_acks = k_acks(dead_worker, queue)
    for _, message_id in ipairs(redis.call('SMEMBERS', dead_acks)) do
      if redis.call('HEXISTS', messages, message_id) == 1 then
        redis.call('RPUSH', ready_queue, message_id)
      end
    end
    redis.call('DEL', dead_acks)
    if #redis.call('KEYS', k_acks_of(dead_worker) .. '*') == 0 then
      redis.call('ZREM', heartbeats, dead_worker)
    end
  end
  local expired = redis.call('ZRANGEBYSCORE', dead_queue, 0, at - tonumber(dead_message_ttl_ms))
  for _, message_id in ipairs(expired) do
    redis.call('ZREM', dead_queue, message_id)
    redis.call('HDEL', dead_messages, message_id)
  end
end

local out, skipped, taken = {}, {}, {}
local function drop(message_id, id, why)
  redis.call('SREM', acks, message_id)
  redis.call('HDEL', messages, message_id)
  skipped[#skipped + 1] = id
  skipped[#skipped + 1] = why
end

for _ = 1, tonumber(count) do
  local message_id = redis.call('LPOP', ready_queue)
  if not message_id then break end
  redis.call('SADD', acks, message_id)
  local body = redis.call('HGET', messages, message_id)
  if body then
    local ok, message = pcall(cjson.decode, body)
    local generation = ok and type(message) == 'table' and type(message.options) == 'table'
      and tonumber(message.options.jobcore_generation)
    if not generation then
      -- Not a Jobcore message: Dramatiq's to handle as it would.
      for _, v in ipairs({body, '', '', '', '', ''}) do out[#out + 1] = v end
      taken[#taken + 1] = {message_id, '', 0}
    else
      local id = tostring(message.message_id)
      local job = k_job(id)
      local rec = load(job)
      if not rec then
        drop(message_id, id, 'missing')
      elseif TERMINAL[rec.state] then
        drop(message_id, id, 'terminal')
      elseif rec.generation ~= generation then
        drop(message_id, id, 'stale')
      elseif OWNED[rec.state] and owner_alive(rec) then
        drop(message_id, id, 'busy')
      else
        -- From `claimed` under a lost owner the attempt may have begun: its delivery counts.
        -- From `active` it was counted when it began, and the attempt's number is reused.
        local deliveries = rec.deliveries
        if rec.state == STATE.CLAIMED then deliveries = deliveries + 1 end
        if deliveries >= rec.maxDeliveries then
          local reason = string.format(delivery_cap_reason, deliveries)
          local attempts = rec.state == STATE.ACTIVE and math.max(rec.attempts - 1, 0)
            or rec.attempts
          finish(job, due, id, rec, STATE.FAILED, now, {'failedReason', reason,
            'failure', FAILURE.DELIVERY_CAP, 'attempts', attempts, 'deliveries', deliveries})
          add_event(job, {at = at, event = 'dead-lettered', reason = reason})
          drop(message_id, id, 'dead')
        else
          local attempt = rec.state == STATE.ACTIVE and math.max(rec.attempts, 1)
            or rec.attempts + 1
          redis.call('HSET', job, 'state', STATE.CLAIMED, 'owner', worker_id,
            'deliveries', deliveries)
          taken[#taken + 1] = {message_id, id, generation}
          move_state(id, rec.type, rec.seq, rec.state, STATE.CLAIMED)
          local v = redis.call('HMGET', job, 'payload', 'backoff')
          for _, x in ipairs({body, tostring(attempt), tostring(rec.maxAttempts), v[1] or '',
              v[2] or '', rec.type}) do
            out[#out + 1] = x
          end
        end
      end
    end
  else
    redis.call('SREM', acks, message_id)
  end
end
if token ~= '' then
  if #taken > 0 then
    redis.call('SET', last_claim, cjson.encode({token = token, messages = taken}), 'PX', 86400000)
  else
    redis.call('DEL', last_claim)
  end
end
return {out, skipped}
