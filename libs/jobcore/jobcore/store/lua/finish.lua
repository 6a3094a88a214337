-- finish.lua: an attempt ended, and its message is acked (Dramatiq's ack, in the same
-- script: the worker's one write per job when nothing else was written). The record moves
-- by the outcome (one vocabulary with Python's AttemptOutcome): completed, retrying (a new
-- generation, waiting in the due set until its time), one of the failing outcomes (a dead
-- letter of the matching failure kind), or requeued by a graceful shutdown (not an attempt:
-- its attempt and delivery are given back; its message is sent at once, or after the pause
-- a stopping worker asks for). An attempt still
-- ``claimed`` is recorded as begun first (``begin_attempt``). Only the owner of the
-- generation may finish it; run twice, the second run changes nothing but the ack.
-- KEYS[1] = job: the record's hash
-- KEYS[2] = due: the due set
-- KEYS[3] = acks: the worker process's fetched-but-unacked ids for the job's queue
-- KEYS[4] = messages: the queue's message bodies
-- ARGV[1] = job_id
-- ARGV[2] = generation: the generation that ran
-- ARGV[3] = worker_id: the worker that ran it
-- ARGV[4] = now: epoch ms
-- ARGV[5] = outcome: an AttemptOutcome value
-- ARGV[6] = result_json: what a completed job returned, or ''
-- ARGV[7] = attempt_error: what the failed attempt raised, or ''
-- ARGV[8] = next_attempt_at: when a retrying or requeued job's message is due (epoch ms), or
--   '' (a requeued job's at once)
-- ARGV[9] = failed_reason: a dead letter's failedReason, or ''
-- ARGV[10] = link: the W3C traceparent of the attempt's span, for the next attempt to link
-- ARGV[11] = attempt: the attempt's number (as its claim gave it)
-- ARGV[12] = started_at: when the attempt began (epoch ms)
-- ARGV[13] = message_id: the broker's id of the message to ack, or '' for none
-- Reply: {outcome} | {'lost', state}
local function record_end()
  local rec = load(job)
  if not rec or not OWNED[rec.state] or rec.generation ~= tonumber(generation)
      or rec.owner ~= worker_id then
    return {'lost', rec and rec.state or 'missing'}
  end
  if rec.state == STATE.CLAIMED then
    begin_attempt(job, job_id, rec, worker_id, attempt, started_at, false)
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
    move_state(job_id, rec.type, rec.seq, rec.state, STATE.RETRYING)
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
      'deliveries', rec.deliveries - 1, 'attempts', math.max(rec.attempts - 1, 0),
      'link', link)
    redis.call('HDEL', job, 'owner')
    move_state(job_id, rec.type, rec.seq, rec.state, STATE.WAITING)
    add_event(job, {at = at, event = 'requeued', reason = 'worker shut down before finishing'})
    send_when_due(job, due, job_id, rec, tonumber(next_attempt_at) or at, now)
    return {outcome}
  end
  return nil
end

local reply = record_end()
if message_id ~= '' and redis.call('SREM', acks, message_id) == 1 then
  redis.call('HDEL', messages, message_id)
end
if not reply then return redis.error_reply('unknown outcome ' .. outcome) end
return reply
