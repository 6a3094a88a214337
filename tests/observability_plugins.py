"""A test-only job type that puts a payload and an address in its logs, to prove redaction."""

from __future__ import annotations

import structlog

from jobcore.execution.context import JobContext
from jobcore.model.backoff import RetryPolicy
from jobcore.model.specs import JobSpec

#: Logs its payload, then fails with the payload's address in the error (one attempt).
LOG_PAYLOAD = JobSpec(
    name="test-log-payload",
    queue="default",
    payload_schema={"type": "object", "properties": {"email": {"type": "string"}}},
    retry=RetryPolicy(1),
)

SPECS = [LOG_PAYLOAD]

log = structlog.get_logger("tests.observability")


class UnreachableAddress(Exception):
    """The failure carrying an address in its message."""


def log_payload(job: JobContext) -> None:
    log.info("payload received", payload=job.payload, email=job.payload.get("email"))
    raise UnreachableAddress(f"mailbox {job.payload.get('email')} does not exist")


IMPLEMENTATIONS = {"test-log-payload": log_payload}
