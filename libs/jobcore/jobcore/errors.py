"""Jobcore's error tree. Each error says how it is shown: its ``title``, the HTTP status the
API answers with (mapped in one place, ``jobcore_api.problems``) and the exit code of the
command line (mapped in one place, ``jobcore.cli``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: Longest quotation of a client's value in a message, in characters.
MAX_QUOTED = 100


def quoted(value: Any) -> str:
    """``value`` in JSON's spelling, cut to ``MAX_QUOTED`` characters: how messages quote
    what a client sent (never Python's ``repr``, never a whole megabyte)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = json.dumps(str(value), ensure_ascii=False)
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 1] + "…"


#: Exit codes of the command line, by what went wrong.
EXIT_INVALID = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_UNAVAILABLE = 5
#: Something failed that is not the caller's doing (a bug).
EXIT_INTERNAL = 70
#: Exit status of a service that refuses to start (``EX_CONFIG``, after a
#: ``ConfigurationError``): restarting it cannot help, so supervisors give up on it.
EXIT_REFUSED_TO_START = 78


class JobcoreError(Exception):
    """Root of every error Jobcore raises on purpose."""

    #: What the problem is called (the problem's ``title``, the CLI's error title).
    title = "Error"
    #: The HTTP status the API answers with.
    http_status = 500
    #: The exit code of the command line.
    exit_code = EXIT_INTERNAL


# --- client errors: something the caller can fix -------------------------------------


@dataclass(frozen=True)
class Problem:
    """One reason a request is invalid: a JSON pointer into the request and what to fix."""

    pointer: str
    detail: str


class InvalidRequest(JobcoreError):
    """The request parsed but breaks a schema or a limit (HTTP 422)."""

    title = "The request is invalid"
    http_status = 422
    exit_code = EXIT_INVALID

    def __init__(self, problems: list[Problem], title: str | None = None) -> None:
        super().__init__("; ".join(f"{p.pointer or '/'}: {p.detail}" for p in problems))
        self.problems = problems
        if title is not None:
            self.title = title


class UnknownJobType(InvalidRequest):
    """The job type names no spec."""


class MalformedRequest(JobcoreError):
    """The request is not usable as sent (HTTP 400): bad JSON, conflicting keys."""

    title = "Bad request"
    http_status = 400
    exit_code = EXIT_INVALID


class IdempotencyConflict(JobcoreError):
    """The idempotency key was already used for a different request (HTTP 422)."""

    title = "Idempotency key reused"
    http_status = 422
    exit_code = EXIT_CONFLICT

    def __init__(self, job_id: str) -> None:
        super().__init__(
            "This idempotency key was already used for a different request "
            f"(job {job_id}); use a new key for a new job"
        )
        self.job_id = job_id


class JobNotFound(JobcoreError):
    """No job has this id (HTTP 404)."""

    title = "Job not found"
    http_status = 404
    exit_code = EXIT_NOT_FOUND

    def __init__(self, job_id: str) -> None:
        super().__init__(f"No job with id {quoted(job_id)}")
        self.job_id = job_id


class InvalidTransition(JobcoreError):
    """The job's state does not allow the operation (HTTP 409)."""

    title = "Conflict with the job's state"
    http_status = 409
    exit_code = EXIT_CONFLICT

    def __init__(self, job_id: str, state: str, operation: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"Job {job_id} is {state}; {operation} needs one of: {', '.join(allowed)}")
        self.job_id = job_id
        self.state = state


# --- raised by job code ---------------------------------------------------------------


class PermanentError(JobcoreError):
    """Raised by job code when retrying cannot help (a refused address, a payload the job
    cannot use): the job fails at once, a dead letter marked permanent, whatever attempts
    it had left. Bulk retries skip such jobs unless asked."""


class UnstorableResult(PermanentError):
    """A job returned a value its record cannot hold as JSON (a ``datetime``, a set, NaN or
    an infinity): the attempt fails permanently, saying what to return instead."""


class JobCancelled(BaseException):
    """Raised before a running attempt's first guarded effect when its job was cancelled
    while it was only ``claimed``: the attempt stops there, and nothing more is recorded. A
    ``BaseException``, so ``except Exception`` in job code does not swallow it."""


class JobInterrupted(BaseException):
    """Raised by ``JobContext.sleep`` and ``JobContext.stop_if_asked`` when a graceful
    shutdown asks an interruptible job to stop: the attempt ends, the job goes back to
    ``waiting`` (not counted as an attempt). A ``BaseException``, so ``except Exception``
    in job code does not swallow it."""


# --- the store is unavailable: try again later ------------------------------------------


class StoreUnavailable(JobcoreError):
    """Redis cannot be reached, timed out, or refuses writes (HTTP 503)."""

    title = "Service unavailable"
    http_status = 503
    exit_code = EXIT_UNAVAILABLE


class StoreUnreachable(StoreUnavailable):
    """Redis could not be reached, or did not answer in time (HTTP 503): a write sent to it
    may still have been made."""


class SubmissionMayExist(StoreUnavailable):
    """Redis did not answer a new job's create script in time: the job may exist (HTTP 503).
    Retrying with the same idempotency key gets it if it does."""

    title = "Submission not confirmed"

    def __init__(self, job_id: str, cause: StoreUnavailable) -> None:
        super().__init__(f"job {job_id} may exist: {cause}")
        self.job_id = job_id


class NotReplicated(StoreUnavailable):
    """Redis took a write, but fewer replicas than ``JOBCORE_MIN_REPLICAS_ACK`` confirmed it
    in time: a failover now could lose it, so it does not count yet (HTTP 503)."""

    title = "Change not confirmed"

    def __init__(self, acknowledged: int, required: int, reply: Any = None) -> None:
        super().__init__(
            f"{acknowledged} of {required} replica(s) confirmed the write in time; "
            "it may be lost in a failover"
        )
        self.acknowledged = acknowledged
        self.required = required
        #: The reply of the unconfirmed call, for the operation that made it.
        self.reply = reply


class SubmissionNotConfirmed(NotReplicated):
    """A new job was written but not confirmed by enough replicas: it may exist (HTTP 503).
    Retrying with the same idempotency key gets the same job if it survived."""

    title = "Submission not confirmed"

    def __init__(self, job_id: str, unconfirmed: NotReplicated) -> None:
        super().__init__(unconfirmed.acknowledged, unconfirmed.required, unconfirmed.reply)
        self.args = (f"job {job_id} may exist: {unconfirmed}",)
        self.job_id = job_id


class QueueFull(StoreUnavailable):
    """A queue is deeper than the configured limit: new work waits (HTTP 503)."""

    title = "Queue full"

    def __init__(self, queue: str, max_depth: int) -> None:
        super().__init__(f"queue {queue!r} holds {max_depth} or more waiting jobs")
        self.queue = queue
        self.max_depth = max_depth


# --- configuration ------------------------------------------------------------------------


class ConfigurationError(JobcoreError):
    """A setting or a job-type declaration is wrong; the process refuses to start."""

    title = "Configuration error"
    exit_code = EXIT_INVALID
