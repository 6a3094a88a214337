-- begin.lua: attempts that began in a worker process are recorded (``claimed`` becomes
-- ``active``, the delivery is counted, ``started`` is added to the history) by its start
-- recorder, a moment after they began, for those still running then; an attempt that ends
-- first is recorded as begun by its end (``finish.lua``). A job no longer claimed by this
-- process for that generation (cancelled meanwhile) is named in the reply.
-- KEYS[1...] = jobs: the records of the attempts
-- ARGV[1] = worker_id: the worker process running them
-- ARGV[2] = attempts_json: one [job_id, generation, attempt, started_at] per job, in order
-- Reply: the ids of the jobs this process no longer holds
local attempts = cjson.decode(attempts_json)
local gone = {}
for i, job in ipairs(jobs) do
  local id, generation, attempt, started_at = unpack(attempts[i])
  local rec = load(job)
  if rec and rec.state == STATE.CLAIMED and rec.owner == worker_id
      and rec.generation == tonumber(generation) then
    begin_attempt(job, id, rec, worker_id, attempt, started_at, true)
  elseif not (rec and rec.state == STATE.ACTIVE and rec.owner == worker_id
      and rec.generation == tonumber(generation)) then
    gone[#gone + 1] = id
  end
end
return gone
