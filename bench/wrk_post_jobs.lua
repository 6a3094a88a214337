-- wrk script: POST /jobs with a dummy job and an idempotency key unique to the run.
-- Usage: wrk -s bench/wrk_post_jobs.lua URL -- RUN_ID
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local run = "run"
local counter = 0

function init(args)
  run = args[1] or run
end

local headers = { ["Content-Type"] = "application/json" }

function request()
  counter = counter + 1
  local body = string.format(
    '{"type":"dummy","payload":{},"idempotencyKey":"%s-%d-%d"}', run, tid, counter)
  return wrk.format("POST", "/jobs", headers, body)
end
