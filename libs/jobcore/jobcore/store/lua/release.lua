-- release.lua: messages a stopping worker process claimed but will not start go back to the
-- front of their queue, untouched, and their records back to ``waiting`` (same generation:
-- the message stays valid). Nothing is charged. A message that is not Jobcore's is requeued
-- as Dramatiq's own requeue would.
-- KEYS[1] = ready_queue: the queue's list of ready message ids
-- KEYS[2] = messages: the queue's message bodies
-- KEYS[3] = acks: this process's fetched-but-unacked ids for the queue
-- KEYS[4...] = jobs: the record of each message's job ('' for a message that is not Jobcore's)
-- ARGV[1] = worker_id: the worker process releasing them
-- ARGV[2] = queue: the queue's name
-- ARGV[3] = messages_json: one [message_id, job_id, generation] per job, in order
-- Reply: how many were put back
local released = 0
local list = cjson.decode(messages_json)
for i, job in ipairs(jobs) do
  local message_id, id, generation = unpack(list[i])
  if redis.call('SREM', acks, message_id) == 1 then
    if job ~= '' then
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
      released = released + 1
    end
  end
end
return released
