-- _records.lua: helpers every script shares (not a script of its own). They come after the
-- generated prelude (key builders, states, outcomes) and before each script's body.

-- A job is in exactly one index: the one of its state and type, scored by its sequence.
local function move_state(id, jtype, seq, from, to)
  if from then redis.call('ZREM', k_state_type(from, jtype), id) end
  redis.call('ZADD', k_state_type(to, jtype), seq, id)
end

-- The history is a field of the record, not a key of its own: one key per job is the
-- smaller footprint, and a short history keeps the record a compact listpack.
local function add_event(job, event)
  local line = cjson.encode(event)
  local history = redis.call('HGET', job, 'history')
  redis.call('HSET', job, 'history', history and (history .. '\n' .. line) or line)
end

-- The record fields transitions read; a damaged field reads as its default, so every
-- transition still works on the record.
local REC_FIELDS = {'state', 'type', 'seq', 'generation', 'owner', 'attempts', 'maxAttempts',
                    'deliveries', 'maxDeliveries', 'queue'}
local function load(job)
  local v = redis.call('HMGET', job, unpack(REC_FIELDS))
  if not v[1] then return nil end
  local rec = {}
  for i, name in ipairs(REC_FIELDS) do rec[name] = v[i] end
  rec.seq = tonumber(rec.seq) or 0
  rec.generation = tonumber(rec.generation) or 1
  rec.attempts = tonumber(rec.attempts) or 0
  rec.maxAttempts = tonumber(rec.maxAttempts) or 1
  rec.deliveries = tonumber(rec.deliveries) or 0
  rec.maxDeliveries = tonumber(rec.maxDeliveries) or 1
  return rec
end

-- A completed job never runs, moves or retries again: what only those read goes with it
-- (the record of a no-op job then fits a 512-byte listpack). Its idempotency key's name goes
-- too: a completed job is never purged, and retention (at least the idempotency window)
-- comes after the key has expired.
local AFTER_COMPLETED = {'owner', 'nextAttemptAt', 'backoff', 'traceparent', 'generation', 'seq',
                         'idem'}
local AFTER_OTHER_ENDS = {'owner', 'nextAttemptAt'}
local function finish(job, due, id, rec, to, now, fields)
  redis.call('HSET', job, 'state', to, 'finishedAt', now, unpack(fields))
  redis.call('HDEL', job, unpack(to == STATE.COMPLETED and AFTER_COMPLETED or AFTER_OTHER_ENDS))
  move_state(id, rec.type, rec.seq, rec.state, to)
  redis.call('ZREM', due, id)
end

-- A deleted job takes its idempotency key with it (if the key still names it), so a replay
-- afterwards creates a new job instead of answering with one that no longer exists.
local function forget_idempotency_key(job, id)
  local key = redis.call('HGET', job, 'idem')
  if key then
    local value = redis.call('GET', key)
    if value and string.sub(value, 1, #id + 1) == id .. ' ' then redis.call('DEL', key) end
  end
end

local function owner_alive(rec)
  return rec.owner and redis.call('EXISTS', k_worker(rec.owner)) == 1
end

-- Tell idle consumers of a queue a message is ready (they wait on its wake list with BLPOP,
-- outside Lua); a few tokens are kept, enough to wake each idle consumer once.
local WAKE_TOKENS = 16
local function wake(key)
  redis.call('LPUSH', key, 1)
  redis.call('LTRIM', key, 0, WAKE_TOKENS - 1)
end


-- A job's message for its current generation, written to its queue as Dramatiq's Redis broker
-- would (body in the queue's ``.msgs`` hash, id pushed on its ready list). The broker's
-- message id is ``<job id>.<generation>``: sending a generation twice writes one message.
-- The actor name follows ``JobSpec.actor_name`` (dashes become underscores). The message
-- carries the trace of the job's PRODUCER span and a link to the attempt (or request) that
-- asked for it (the record's ``link``, used once).
local function send_message(job, id, rec, now)
  local generation = tonumber(redis.call('HGET', job, 'generation')) or rec.generation
  local message_id = id .. '.' .. generation
  local v = redis.call('HMGET', job, 'traceparent', 'link')
  local options = {jobcore_generation = generation, redis_message_id = message_id}
  if v[1] and v[1] ~= '' then options.traceparent = v[1] end
  if v[2] then
    if v[2] ~= '' then options.jobcore_previous_attempt = v[2] end
    redis.call('HDEL', job, 'link')
  end
  local body = '{"queue_name":' .. cjson.encode(rec.queue) ..
    ',"actor_name":' .. cjson.encode((string.gsub(rec.type, '-', '_'))) ..
    ',"args":[],"kwargs":{},"options":' .. cjson.encode(options) ..
    ',"message_id":' .. cjson.encode(id) .. ',"message_timestamp":' .. tonumber(now) .. '}'
  redis.call('HSET', k_messages(rec.queue), message_id, body)
  redis.call('RPUSH', k_ready(rec.queue), message_id)
  wake(k_wake(rec.queue))
end

-- A pending job becomes due at ``at``: its message is sent now if that time has come, or it
-- waits in the due set for the promoter.
local function send_when_due(job, due, id, rec, at, now)
  if tonumber(at) <= tonumber(now) then
    redis.call('ZREM', due, id)
    send_message(job, id, rec, now)
  else
    redis.call('ZADD', due, at, id)
  end
end

-- An attempt that began in a worker process is recorded: ``claimed`` becomes ``active``, its
-- delivery is counted and ``started`` added (``redelivered`` when it takes over the number
-- of an attempt a crash cut short). With ``move`` false the index entry is left for the
-- caller, which moves the job on from ``claimed`` in the same script.
local function begin_attempt(job, id, rec, worker_id, attempt, started_at, move)
  local number = tonumber(attempt)
  local deliveries = rec.deliveries + 1
  redis.call('HSET', job, 'state', STATE.ACTIVE, 'deliveries', deliveries, 'attempts', number,
    'processedAt', started_at)
  redis.call('HDEL', job, 'nextAttemptAt')
  local event = {at = tonumber(started_at), event = 'started', attempt = number,
    delivery = deliveries, worker = worker_id}
  if number <= rec.attempts then event.redelivered = true end
  add_event(job, event)
  rec.deliveries, rec.attempts = deliveries, number
  if move then
    move_state(id, rec.type, rec.seq, STATE.CLAIMED, STATE.ACTIVE)
    rec.state = STATE.ACTIVE
  end
end

-- A job claimed or running under a process that is gone goes back to ``waiting`` with a new
-- generation and its message. From ``claimed`` the attempt may have begun unrecorded: its
-- delivery is counted; from ``active`` it was, and the attempt's number is given back. Past
-- the delivery cap the job fails instead.
local function release_lost(job, due, id, rec, now, cap_reason)
  local at = tonumber(now)
  local deliveries, attempts = rec.deliveries, rec.attempts
  if rec.state == STATE.CLAIMED then
    deliveries = deliveries + 1
  else
    attempts = math.max(attempts - 1, 0)
  end
  if deliveries >= rec.maxDeliveries then
    local reason = string.format(cap_reason, deliveries)
    finish(job, due, id, rec, STATE.FAILED, now, {'failedReason', reason,
      'failure', FAILURE.DELIVERY_CAP, 'attempts', attempts, 'deliveries', deliveries})
    add_event(job, {at = at, event = 'dead-lettered', reason = reason})
    return 'dead'
  end
  redis.call('HSET', job, 'state', STATE.WAITING, 'generation', rec.generation + 1,
    'attempts', attempts, 'deliveries', deliveries)
  redis.call('HDEL', job, 'owner')
  move_state(id, rec.type, rec.seq, rec.state, STATE.WAITING)
  add_event(job, {at = at, event = 'recovered',
    reason = 'worker ' .. (rec.owner or '?') .. ' was lost'})
  send_message(job, id, rec, now)
  return 'recovered'
end


-- Give back one message a worker process fetched but will not start: out of its acks set,
-- its job (if Jobcore's, still ``claimed`` by that process in that generation) back to
-- ``waiting``, the message to the front of its queue. Nothing is charged. Whether it went
-- back to the queue.
local function release_message(ready_queue, messages, acks, worker_id, queue, message_id, id,
    generation)
  if redis.call('SREM', acks, message_id) == 0 then return false end
  if id ~= '' then
    local job = k_job(id)
    local rec = load(job)
    if rec and rec.state == STATE.CLAIMED and rec.owner == worker_id
        and rec.generation == tonumber(generation) then
      redis.call('HSET', job, 'state', STATE.WAITING)
      redis.call('HDEL', job, 'owner')
      move_state(id, rec.type, rec.seq, STATE.CLAIMED, STATE.WAITING)
    end
  end
  if redis.call('HEXISTS', messages, message_id) == 1 then
    redis.call('LPUSH', ready_queue, message_id)
    wake(k_wake(queue))
    return true
  end
  return false
end
