"""The options a Jobcore message carries besides Dramatiq's own: a job's message holds no
payload (that stays in the record), only which generation of the job it starts and the
trace it belongs to."""

from __future__ import annotations

#: The record generation the message was sent for (a worker skips a stale one).
GENERATION_OPTION = "jobcore_generation"
#: The W3C ``traceparent`` of the job's PRODUCER span.
TRACEPARENT_OPTION = "traceparent"
#: The W3C ``traceparent`` of the attempt (or request) that sent this message again: the next
#: attempt's span links to it.
PREVIOUS_ATTEMPT_OPTION = "jobcore_previous_attempt"
