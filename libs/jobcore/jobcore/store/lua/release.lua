-- release.lua: messages a stopping worker process claimed but will not start go back to the
-- front of their queue, untouched, and their records back to ``waiting`` (same generation:
-- the message stays valid). Nothing is charged. A message that is not Jobcore's is requeued
-- as Dramatiq's own requeue would.
-- KEYS[1] = ready_queue: the queue's list of ready message ids
-- KEYS[2] = messages: the queue's message bodies
-- KEYS[3] = acks: this process's fetched-but-unacked ids for the queue
-- ARGV[1] = worker_id: the worker process releasing them
-- ARGV[2] = queue: the queue's name
-- ARGV[3] = messages_json: one [message_id, job_id, generation] per message ('' as the job
--   id of a message that is not Jobcore's)
-- Reply: how many were put back
local released = 0
for _, m in ipairs(cjson.decode(messages_json)) do
  if release_message(ready_queue, messages, acks, worker_id, queue, m[1], m[2], m[3]) then
    released = released + 1
  end
end
return released
