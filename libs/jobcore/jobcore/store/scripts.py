"""The Lua scripts behind each lifecycle transition: one round trip, atomic, per transition.

Every script starts with the same prelude: the key builders of ``keys.py``, the state
groups of ``lifecycle.py`` and a few shared helpers. Scripts return flat lists whose
first element names the outcome.
"""

from __future__ import annotations

from jobcore.model.states import lua_state_sets
from jobcore.store.keys import lua_key_helpers

_HELPERS = r"""
local function move_state(id, jtype, seq, from, to)
  if from then redis.call('ZREM', k_state_type(from, jtype), id) end
  redis.call('ZADD', k_state_type(to, jtype), seq, id)
end

-- The history is a field of the record, not a key of its own: one key per job is the
-- smaller footprint, and a short history keeps the record a compact listpack.
local function add_event(id, event)
  local k = k_job(id)
  local line = cjson.encode(event)
  local history = redis.call('HGET', k, 'history')
  redis.call('HSET', k, 'history', history and (history .. '\n' .. line) or line)
end

-- A completed job never runs, moves or retries again: what only those read goes with it
-- (the record of a no-op job then fits a 512-byte listpack). Its idempotency key goes too:
-- a completed job is never purged, and retention (at least the idempotency window) comes
-- after the key has expired.
local AFTER_COMPLETED = {'owner', 'nextAttemptAt', 'backoff', 'traceparent', 'generation', 'seq',
                         'idem'}
local AFTER_OTHER_ENDS = {'owner', 'nextAttemptAt'}
local function finish(id, rec, to, now, fields)
  redis.call('HSET', k_job(id), 'state', to, 'finishedAt', now, unpack(fields))
  redis.call('HDEL', k_job(id), unpack(to == 'completed' and AFTER_COMPLETED or AFTER_OTHER_ENDS))
  move_state(id, rec.type, rec.seq, rec.state, to)
  redis.call('ZREM', K_DUE, id)
end

local REC_FIELDS = {'state', 'type', 'seq', 'generation', 'owner', 'attempts', 'maxAttempts',
                    'deliveries', 'maxDeliveries', 'queue'}
local function load(id)
  local v = redis.call('HMGET', k_job(id), unpack(REC_FIELDS))
  if not v[1] then return nil end
  local rec = {}
  for i, name in ipairs(REC_FIELDS) do rec[name] = v[i] end
  -- A damaged field reads as its default, so every transition still works on the record.
  rec.seq = tonumber(rec.seq) or 0
  rec.generation = tonumber(rec.generation) or 1
  rec.attempts = tonumber(rec.attempts) or 0
  rec.maxAttempts = tonumber(rec.maxAttempts) or 1
  rec.deliveries = tonumber(rec.deliveries) or 0
  rec.maxDeliveries = tonumber(rec.maxDeliveries) or 1
  return rec
end

-- A deleted job takes its idempotency key with it (if the key still names it), so a replay
-- afterwards creates a new job instead of answering with one that no longer exists.
local function forget_idempotency_key(id)
  local key = redis.call('HGET', k_job(id), 'idem')
  if key then
    local value = redis.call('GET', key)
    if value and string.sub(value, 1, #id + 1) == id .. ' ' then redis.call('DEL', key) end
  end
end

local function owner_alive(rec)
  return rec.owner and redis.call('EXISTS', k_worker(rec.owner)) == 1
end
"""

PRELUDE = lua_key_helpers() + lua_state_sets() + _HELPERS

#: KEYS[1] idempotency key or '', KEYS[2] ready-queue list or '', KEYS[3] message hash or '';
#: ARGV: id, type, queue, payload, now, state, dueAt, maxAttempts, maxDeliveries, backoff,
#: traceId, runAt, fingerprint, windowMs, traceparent, redisMessageId, messageBody.
#: With a message (KEYS[2]), it is written to the ready queue as the broker would, in the same
#: script: the job cannot be accepted without its message, so it is not watched as due.
CREATE = r"""
local id, jtype, queue, payload = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, state, due_at = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local fingerprint, window = ARGV[13], tonumber(ARGV[14])
if KEYS[1] ~= '' then
  local existing = redis.call('GET', KEYS[1])
  if existing then
    local sep = string.find(existing, ' ', 1, true)
    local old_id = string.sub(existing, 1, (sep or 1) - 1)
    local old_state = sep and redis.call('HGET', k_job(old_id), 'state')
    -- A key whose job is gone (or a damaged key) names nothing: the new job takes it over.
    if old_state then
      if string.sub(existing, sep + 1) ~= fingerprint then return {'conflict', old_id} end
      return {'duplicate', old_id, old_state}
    end
  end
  redis.call('SET', KEYS[1], id .. ' ' .. fingerprint, 'PX', window)
end
local seq = redis.call('INCR', K_SEQ)
local fields = {'type', jtype, 'queue', queue, 'payload', payload, 'state', state,
  'attempts', 0, 'maxAttempts', ARGV[8], 'deliveries', 0, 'maxDeliveries', ARGV[9],
  'progress', 0, 'createdAt', now, 'traceId', ARGV[11], 'generation', 1, 'backoff', ARGV[10],
  'seq', seq}
if ARGV[12] ~= '' then table.insert(fields, 'runAt'); table.insert(fields, ARGV[12]) end
if ARGV[15] ~= '' then table.insert(fields, 'traceparent'); table.insert(fields, ARGV[15]) end
if KEYS[1] ~= '' then table.insert(fields, 'idem'); table.insert(fields, KEYS[1]) end
redis.call('HSET', k_job(id), unpack(fields))
redis.call('SADD', K_TYPES, jtype)
move_state(id, jtype, seq, nil, state)
if KEYS[2] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[16], ARGV[17])
  redis.call('RPUSH', KEYS[2], ARGV[16])
else
  redis.call('ZADD', K_DUE, due_at, id)
end
local event = {at = now, event = 'accepted', state = state}
if ARGV[12] ~= '' then event.runAt = tonumber(ARGV[12]) end
add_event(id, event)
return {'created', id, state}
"""

#: ARGV: id, generation — the message reached a ready queue: stop watching it as due.
CONFIRM_READY = r"""
local id, gen = ARGV[1], tonumber(ARGV[2])
local rec = load(id)
if not rec or rec.generation ~= gen then return {'stale'} end
redis.call('ZREM', K_DUE, id)
if rec.state == 'delayed' then
  redis.call('HSET', k_job(id), 'state', 'waiting')
  move_state(id, rec.type, rec.seq, 'delayed', 'waiting')
end
return {'ok'}
"""

#: ARGV: id, generation, workerId, now, deliveryCapReason
START = r"""
local id, gen, wid, now = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local rec = load(id)
if not rec then return {'missing'} end
if TERMINAL[rec.state] then return {'terminal', rec.state} end
if rec.generation ~= gen then return {'stale', tostring(rec.generation)} end
local redelivered = rec.state == 'active'
if redelivered and owner_alive(rec) then return {'busy', rec.owner} end
local deliveries = rec.deliveries + 1
if deliveries > rec.maxDeliveries then
  local reason = string.format(ARGV[5], rec.deliveries)
  -- A redelivered job's last attempt was cut short by a crash: its number is given back.
  local attempts = redelivered and math.max(rec.attempts - 1, 0) or rec.attempts
  finish(id, rec, 'failed', now,
    {'failedReason', reason, 'failure', 'delivery-cap', 'attempts', attempts})
  add_event(id, {at = now, event = 'dead-lettered', reason = reason})
  return {'dead', reason}
end
-- ``attempts`` counts attempts started; a redelivery replaces a crashed attempt, whose
-- number it takes over.
local attempt = redelivered and math.max(rec.attempts, 1) or rec.attempts + 1
redis.call('HSET', k_job(id), 'state', 'active', 'owner', wid, 'deliveries', deliveries,
  'processedAt', now, 'attempts', attempt)
redis.call('HDEL', k_job(id), 'nextAttemptAt')
move_state(id, rec.type, rec.seq, rec.state, 'active')
redis.call('ZREM', K_DUE, id)
local event = {at = now, event = 'started', attempt = attempt, delivery = deliveries,
  worker = wid}
if redelivered then event.redelivered = true end
add_event(id, event)
local v = redis.call('HMGET', k_job(id), 'payload', 'backoff', 'traceparent')
return {'started', tostring(attempt), tostring(rec.maxAttempts), v[1], v[2],
  v[3] or '', rec.type}
"""

#: ARGV: id, generation, workerId, now, outcome, then per outcome:
#:   completed: resultJson | retry: error, nextAttemptAt | failed: error, reason, failureKind
#:   | requeue: -
FINISH = r"""
local id, gen, wid, now, outcome = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), ARGV[5]
local rec = load(id)
if not rec or rec.state ~= 'active' or rec.generation ~= gen or rec.owner ~= wid then
  return {'lost', rec and rec.state or 'missing'}
end
local attempt = rec.attempts
local k = k_job(id)
if outcome == 'completed' then
  finish(id, rec, 'completed', now, {'result', ARGV[6], 'progress', 100})
  add_event(id, {at = now, event = 'completed', attempt = attempt})
  return {'completed', tostring(attempt)}
elseif outcome == 'retry' then
  local next_at = tonumber(ARGV[7])
  redis.call('HSET', k, 'state', 'retrying', 'lastError', ARGV[6],
    'nextAttemptAt', next_at, 'generation', rec.generation + 1)
  redis.call('HDEL', k, 'owner')
  move_state(id, rec.type, rec.seq, 'active', 'retrying')
  redis.call('ZADD', K_DUE, next_at, id)
  add_event(id, {at = now, event = 'attempt-failed', attempt = attempt, error = ARGV[6],
    nextAttemptAt = next_at})
  return {'retrying', tostring(rec.generation + 1), rec.queue, rec.type}
elseif outcome == 'failed' then
  local kind = ARGV[8]
  finish(id, rec, 'failed', now, {'lastError', ARGV[6], 'failedReason', ARGV[7], 'failure', kind})
  add_event(id, {at = now, event = 'attempt-failed', attempt = attempt, error = ARGV[6]})
  local dead = {at = now, event = 'dead-lettered', reason = ARGV[7]}
  if kind == 'permanent' then dead.permanent = true end
  if kind == 'human-check' then dead.humanCheck = true end
  add_event(id, dead)
  return {'failed', tostring(attempt)}
elseif outcome == 'requeue' then
  -- A shutdown's requeue is not an attempt: the attempt and the delivery are given back.
  redis.call('HSET', k, 'state', 'waiting', 'generation', rec.generation + 1,
    'deliveries', rec.deliveries - 1, 'attempts', math.max(rec.attempts - 1, 0))
  redis.call('HDEL', k, 'owner')
  move_state(id, rec.type, rec.seq, 'active', 'waiting')
  redis.call('ZADD', K_DUE, now, id)
  add_event(id, {at = now, event = 'requeued', reason = 'worker shut down before finishing'})
  return {'requeued', tostring(rec.generation + 1), rec.queue, rec.type}
end
return redis.error_reply('unknown outcome ' .. outcome)
"""

#: ARGV: id, workerId, progress
PROGRESS = r"""
local id, wid = ARGV[1], ARGV[2]
local v = redis.call('HMGET', k_job(id), 'state', 'owner')
if v[1] ~= 'active' or v[2] ~= wid then return 0 end
redis.call('HSET', k_job(id), 'progress', ARGV[3])
return 1
"""

#: ARGV: id, now
CANCEL = r"""
local id, now = ARGV[1], tonumber(ARGV[2])
local rec = load(id)
if not rec then return {'missing'} end
if not CANCELLABLE[rec.state] then return {'invalid', rec.state} end
finish(id, rec, 'cancelled', now, {})
add_event(id, {at = now, event = 'cancelled', from = rec.state})
return {'cancelled'}
"""

#: ARGV: id, now, resetEffects ('1' or '0'), failure kinds to leave alone (comma-separated)
RETRY = r"""
local id, now, reset = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local rec = load(id)
if not rec then return {'missing'} end
if not RETRYABLE[rec.state] then return {'invalid', rec.state} end
local k = k_job(id)
local kind = redis.call('HGET', k, 'failure')
if not kind and redis.call('HGET', k, 'humanCheck') == '1' then kind = 'human-check' end
if kind and string.find(',' .. ARGV[4] .. ',', ',' .. kind .. ',', 1, true) then
  return {'skipped', kind}
end
redis.call('HSET', k, 'state', 'waiting', 'attempts', 0, 'deliveries', 0, 'progress', 0,
  'generation', rec.generation + 1)
redis.call('HDEL', k, 'failedReason', 'finishedAt', 'result', 'nextAttemptAt', 'owner',
  'processedAt', 'lastError', 'failure', 'humanCheck')
move_state(id, rec.type, rec.seq, rec.state, 'waiting')
redis.call('ZADD', K_DUE, now, id)
local cleared = 0
if reset then
  local effects = redis.call('HGETALL', k_effects(id))
  for i = 1, #effects, 2 do
    local reservation = cjson.decode(effects[i + 1])
    if reservation.status ~= 'done' then
      redis.call('HDEL', k_effects(id), effects[i])
      cleared = cleared + 1
    end
  end
end
add_event(id, {at = now, event = 'retried', from = rec.state,
  effects = reset and 'reset' or 'keep', clearedEffects = cleared})
return {'waiting', tostring(rec.generation + 1), rec.queue, rec.type}
"""

#: ARGV: id, now, margin — re-enqueue a pending job whose message never became ready.
RECOVER_DUE = r"""
local id, now, margin = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local due = redis.call('ZSCORE', K_DUE, id)
if not due or tonumber(due) > now - margin then return {'not-due'} end
local rec = load(id)
if not rec or not PENDING[rec.state] then
  redis.call('ZREM', K_DUE, id)
  return {'gone'}
end
redis.call('HSET', k_job(id), 'generation', rec.generation + 1)
redis.call('ZADD', K_DUE, now, id)
add_event(id, {at = now, event = 'recovered', reason = 'message did not reach a ready queue'})
return {'recovered', tostring(rec.generation + 1), rec.queue, rec.type}
"""

#: ARGV: id, now — an active job whose owner stopped heartbeating goes back to waiting.
RECOVER_ORPHAN = r"""
local id, now = ARGV[1], tonumber(ARGV[2])
local rec = load(id)
if not rec or rec.state ~= 'active' or owner_alive(rec) then return {'alive'} end
local k = k_job(id)
-- The crashed attempt never ended: its number is given back (the delivery stays counted).
redis.call('HSET', k, 'state', 'waiting', 'generation', rec.generation + 1,
  'attempts', math.max(rec.attempts - 1, 0))
redis.call('HDEL', k, 'owner')
move_state(id, rec.type, rec.seq, 'active', 'waiting')
redis.call('ZADD', K_DUE, now, id)
add_event(id, {at = now, event = 'recovered',
  reason = 'worker ' .. (rec.owner or '?') .. ' was lost'})
return {'recovered', tostring(rec.generation + 1), rec.queue, rec.type}
"""

#: ARGV: id, allowed states... — delete a job whose state is one of them, entirely.
PURGE = r"""
local id = ARGV[1]
local rec = load(id)
if not rec then return 0 end
local allowed = false
for i = 2, #ARGV do if ARGV[i] == rec.state then allowed = true end end
if not allowed then return 0 end
forget_idempotency_key(id)
redis.call('DEL', k_job(id), k_effects(id))
redis.call('ZREM', k_state_type(rec.state, rec.type), id)
redis.call('ZREM', K_DUE, id)
return 1
"""

#: ARGV: state or '', type or '', bound, count, order ('desc' or 'asc') — up to ``count``
#: ids with their sequence numbers, past ``bound`` ('(N', '+inf' or '-inf') in that order.
#: Merges the state-and-type indexes the filters span (one index when both are given).
LIST = r"""
local state, jtype, bound, count = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local desc = ARGV[5] == 'desc'
local states = state ~= '' and {state} or ALL_STATES
local types = jtype ~= '' and {jtype} or redis.call('SMEMBERS', K_TYPES)
local indexes = {}
for _, s in ipairs(states) do
  for _, t in ipairs(types) do indexes[#indexes + 1] = k_state_type(s, t) end
end
local found = {}
for _, index in ipairs(indexes) do
  local page
  if desc then
    page = redis.call('ZREVRANGEBYSCORE', index, bound, '-inf', 'WITHSCORES', 'LIMIT', 0, count)
  else
    page = redis.call('ZRANGEBYSCORE', index, bound, '+inf', 'WITHSCORES', 'LIMIT', 0, count)
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
for i = 1, math.min(count, #found) do
  out[#out + 1] = found[i][1]
  out[#out + 1] = string.format('%d', found[i][2])
end
return out
"""

#: KEYS: ready-queue lists — their lengths, then per type ever accepted: the type and its
#: count in each state of ``ALL_STATES``.
STATS = r"""
local out = {}
for _, key in ipairs(KEYS) do out[#out + 1] = redis.call('LLEN', key) end
for _, t in ipairs(redis.call('SMEMBERS', K_TYPES)) do
  out[#out + 1] = t
  for _, s in ipairs(ALL_STATES) do out[#out + 1] = redis.call('ZCARD', k_state_type(s, t)) end
end
return out
"""
