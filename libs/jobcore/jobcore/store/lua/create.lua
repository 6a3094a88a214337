-- create.lua: record an accepted job (waiting or delayed), or find the job its idempotency
-- key already made. With a message, the message is written to its ready queue as Dramatiq's
-- broker would, in the same script: the job cannot be accepted without its message, so it
-- is not watched as due.
-- KEYS[1] = job: the record's hash
-- KEYS[2] = sequence: the counter of accepted jobs
-- KEYS[3] = types: the set of accepted types
-- KEYS[4] = due: the due set
-- KEYS[5] = idempotency: the hashed idempotency key, or '' without one
-- KEYS[6] = ready_queue: the ready list the message goes to, or '' without a message
-- KEYS[7] = messages: the queue's message bodies, or '' without a message
-- KEYS[8] = wake_list: the queue's wake list, or '' without a message
-- ARGV[1] = id: the new job's id
-- ARGV[2] = job_type: its type's name
-- ARGV[3] = queue: its queue
-- ARGV[4] = payload_json: the payload as stored
-- ARGV[5] = state: waiting or delayed
-- ARGV[6] = due_at: when its message must be ready (epoch ms)
-- ARGV[7] = run_at: a delayed job's time (epoch ms), or ''
-- ARGV[8] = max_attempts
-- ARGV[9] = max_deliveries
-- ARGV[10] = backoff_json: the retry backoff as stored
-- ARGV[11] = trace_id: 32 hex digits
-- ARGV[12] = traceparent: the W3C traceparent of its PRODUCER span, or ''
-- ARGV[13] = created_at: now (epoch ms)
-- ARGV[14] = fingerprint: the request's fingerprint, or '' without a key
-- ARGV[15] = window_ms: how long the idempotency key lives
-- ARGV[16] = message_id: the broker's id of the message, or ''
-- ARGV[17] = message_body: the encoded message, or ''
-- Reply: {'created', id, state} | {'duplicate', id, state} | {'conflict', id}
if idempotency ~= '' then
  local existing = redis.call('GET', idempotency)
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
  redis.call('SET', idempotency, id .. ' ' .. fingerprint, 'PX', window_ms)
end
local seq = redis.call('INCR', sequence)
local fields = {'type', job_type, 'queue', queue, 'payload', payload_json, 'state', state,
  'attempts', 0, 'maxAttempts', max_attempts, 'deliveries', 0, 'maxDeliveries', max_deliveries,
  'progress', 0, 'createdAt', created_at, 'traceId', trace_id, 'generation', 1,
  'backoff', backoff_json, 'seq', seq}
if run_at ~= '' then table.insert(fields, 'runAt'); table.insert(fields, run_at) end
if traceparent ~= '' then table.insert(fields, 'traceparent'); table.insert(fields, traceparent) end
if idempotency ~= '' then table.insert(fields, 'idem'); table.insert(fields, idempotency) end
redis.call('HSET', job, unpack(fields))
redis.call('SADD', types, job_type)
move_state(id, job_type, seq, nil, state)
if ready_queue ~= '' then
  redis.call('HSET', messages, message_id, message_body)
  redis.call('RPUSH', ready_queue, message_id)
  wake(wake_list)
else
  redis.call('ZADD', due, tonumber(due_at), id)
end
local event = {at = tonumber(created_at), event = 'accepted', state = state}
if run_at ~= '' then event.runAt = tonumber(run_at) end
add_event(job, event)
return {'created', id, state}
