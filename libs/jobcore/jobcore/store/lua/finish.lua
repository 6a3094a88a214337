-- finish.lua: an attempt ended; the record moves by its outcome (one vocabulary with
-- Python's AttemptOutcome): completed, retrying (with a new generation and its due time),
-- one of the failing outcomes (a dead letter of the matching failure kind), or requeued by a
-- graceful shutdown (not an attempt: its attempt and delivery are given back). A retry waits
-- in the due set until its time; a requeued job's message is sent at once. Only the owner of
-- the generation may finish it.
-- KEYS[1] = job: the record's hash
-- KEYS[2] = due: the due set
-- ARGV[1] = job_id
-- ARGV[2] = generation: the generation that ran
-- ARGV[3] = worker_id: the worker that ran it
-- ARGV[4] = now: epoch ms
-- ARGV[5] = outcome: an AttemptOutcome value
-- ARGV[6] = result_json: what a completed job returned, or ''
-- ARGV[7] = attempt_error: what the failed attempt raised, or ''
-- ARGV[8] = next_attempt_at: when a retrying job runs again (epoch ms), or ''
-- ARGV[9] = failed_reason: a dead letter's failedReason, or ''
-- ARGV[10] = link: the W3C traceparent of the attempt's span, for the next attempt to link
-- Reply: {outcome} | {'lost', state}
local rec = load(job)
if not rec or rec.state ~= STATE.ACTIVE or rec.generation ~= tonumber(generation)
    or rec.owner ~= worker_id then
  return {'lost', rec and rec.state or 'missing'}
end
local at = tonumber(now)
if outcome == OUTCOME.COMPLETED then
  finish(job, due, job_id, rec, STATE.COMPLETED, now,
    {'result', result_json, 'progress', 100})
  add_event(job, {at = at, event = 'completed', attempt = rec.attempts})
  return {outcome}
elseif outcome == OUTCOME.RETRYING then
  local next_at = tonumber(next_attempt_at)
  redis.call('HSET', job, 'state', STATE.RETRYING, 'lastError', attempt_error,
    'nextAttemptAt', next_at, 'generation', rec.generation + 1, 'link', link)
  redis.call('HDEL', job, 'owner')
  move_state(job_id, rec.type, rec.seq, STATE.ACTIVE, STATE.RETRYING)
  add_event(job, {at = at, event = 'attempt-failed', attempt = rec.attempts,
    error = attempt_error, nextAttemptAt = next_at})
  send_when_due(job, due, job_id, rec, next_at, now)
  return {outcome}
elseif FAILURE_OF_OUTCOME[outcome] then
  local kind = FAILURE_OF_OUTCOME[outcome]
  finish(job, due, job_id, rec, STATE.FAILED, now,
    {'lastError', attempt_error, 'failedReason', failed_reason, 'failure', kind})
  add_event(job, {at = at, event = 'attempt-failed', attempt = rec.attempts,
    error = attempt_error})
  local dead = {at = at, event = 'dead-lettered', reason = failed_reason}
  if kind == FAILURE.PERMANENT then dead.permanent = true end
  if kind == FAILURE.HUMAN_CHECK then dead.humanCheck = true end
  add_event(job, dead)
  return {outcome}
elseif outcome == OUTCOME.REQUEUED then
  redis.call('HSET', job, 'state', STATE.WAITING, 'generation', rec.generation + 1,
    'deliveries', rec.deliveries - 1, 'attempts', math.max(rec.attempts - 1, 0), 'link', link)
  redis.call('HDEL', job, 'owner')
  move_state(job_id, rec.type, rec.seq, STATE.ACTIVE, STATE.WAITING)
  add_event(job, {at = at, event = 'requeued', reason = 'worker shut down before finishing'})
  send_message(job, job_id, rec, now)
  return {outcome}
end
return redis.error_reply('unknown outcome ' .. outcome)
