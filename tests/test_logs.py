"""Logs: every stdout line of the real API and worker is JSON; job lines name job and trace."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import structlog
from conftest import wait_until
from dramatiq.middleware import Shutdown
from observed_stack import Stack

from jobcore.errors import JobCancelled, JobInterrupted
from jobcore.execution.job_lifecycle import EXPECTED_ENDS
from jobcore.execution.middleware import worker_middleware
from jobcore.telemetry.logs import REDACTED, Redactor, configure_logging

ADDRESS = "albert.secret@example.com"
#: The worker's lines about one attempt of a job.
JOB_EVENTS = {
    "job started",
    "job completed",
    "job recovered after retries",
    "job attempt failed, will retry",
    "job failed",
    "payload received",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, smtp_sink: Any) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("logs"), smtp_sink.url).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def finished_jobs(stack: Stack) -> dict[str, str]:
    """A welcome email, a job recovering after one failure, and one failing with an address."""
    jobs = {
        "email": stack.submit(
            {"type": "welcome-email", "payload": {"email": ADDRESS, "name": "Albert"}}
        ),
        "recovered": stack.submit(
            {
                "type": "dummy",
                "payload": {"failTimes": 1},
                "backoff": {"type": "fixed", "delayMs": 100},
            }
        ),
        "leaky": stack.submit({"type": "test-log-payload", "payload": {"email": ADDRESS}}),
    }
    stack.wait_for(jobs["email"], "completed")
    stack.wait_for(jobs["recovered"], "completed")
    stack.wait_for(jobs["leaky"], "failed")
    requests.get(stack.api.url + "/no-such-route", timeout=5)
    wait_until(lambda: "job failed" in stack.worker.log(), message="the failure's log line")
    return jobs


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_every_stdout_line_of_the_api_and_the_worker_is_json(stack, finished_jobs):
    for name, text in (("api", stack.api.log()), ("worker", stack.worker.log())):
        lines = _lines(text)
        assert lines, name
        for line in lines:
            event = json.loads(line)
            assert isinstance(event, dict) and "event" in event, (name, line)
            assert event.get("level") and event.get("timestamp"), (name, line)


def test_gunicorn_lines_go_through_the_same_renderer(stack, finished_jobs):
    events = [json.loads(line) for line in _lines(stack.api.log())]
    booting = [e for e in events if e.get("logger") == "gunicorn.error"]
    assert booting and all(e["service"] == "api" for e in booting)


def test_job_lines_carry_job_id_type_attempt_trace_id_and_span_id(stack, finished_jobs):
    events = [json.loads(line) for line in _lines(stack.worker.log())]
    job_lines = [e for e in events if e.get("event") in JOB_EVENTS]
    seen = {e["job_id"] for e in job_lines}
    assert set(finished_jobs.values()) <= seen
    for event in job_lines:
        for field in ("job_id", "job_type", "attempt", "trace_id", "span_id"):
            assert event.get(field), (field, event)
    recovered = [e for e in job_lines if e["job_id"] == finished_jobs["recovered"]]
    record = requests.get(f"{stack.api.url}/jobs/{finished_jobs['recovered']}", timeout=5).json()
    assert {e["trace_id"] for e in recovered} == {record["traceId"]}
    # A first attempt's start is logged at DEBUG, a retry's at INFO.
    assert [e["attempt"] for e in recovered if e["event"] == "job started"] == [2]
    assert any(e["event"] == "job recovered after retries" for e in recovered)


def test_email_addresses_never_reach_the_logs(stack, finished_jobs):
    for text in (stack.api.log(), stack.worker.log()):
        assert ADDRESS not in text
    events = [json.loads(line) for line in _lines(stack.worker.log())]
    [payload_line] = [e for e in events if e.get("event") == "payload received"]
    assert payload_line["payload"] == {"email": REDACTED}
    assert payload_line["email"] == REDACTED
    failed = [e for e in events if e.get("event") == "job failed"]
    assert failed and REDACTED in failed[0]["error"]


def test_redaction_covers_named_fields_at_any_depth_and_addresses_in_text():
    redact = Redactor({"email", "to"})
    event = redact(
        None,
        "info",
        {
            "event": "sent to bob@example.org",
            "payload": {"to": "x", "nested": [{"email": "y"}, "keep"]},
            "name": "Bob",
        },
    )
    assert event == {
        "event": f"sent to {REDACTED}",
        "payload": {"to": REDACTED, "nested": [{"email": REDACTED}, "keep"]},
        "name": "Bob",
    }


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """``configure_logging`` in this process, undone after the test."""
    saved_structlog = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    structlog.configure(**saved_structlog)
    root.handlers[:], root.level = saved_handlers, saved_level


def test_structlog_lines_skip_the_stdlib_but_match_its_lines(capsys, logging_restored):
    log = structlog.get_logger("jobcore.test")
    configure_logging("DEBUG", service="old")
    log.debug("before the last call")
    configure_logging("INFO", service="worker", redact={"email"})  # the last call wins
    structlog.contextvars.bind_contextvars(job_id="j-1")
    try:
        log.debug("hidden")
        log.info("job started", email=ADDRESS, attempt=1)
        try:
            raise ValueError(f"mailbox {ADDRESS} does not exist")
        except ValueError:
            log.exception("job failed")
        logging.getLogger("dramatiq").info("from the stdlib, to %s", ADDRESS)
    finally:
        structlog.contextvars.unbind_contextvars("job_id")
    before, started, failed, stdlib = [json.loads(line) for line in _lines(capsys.readouterr().out)]
    assert before["event"] == "before the last call" and before["service"] == "old"
    assert started["logger"] == "jobcore.test" and started["email"] == REDACTED
    assert {"event", "level", "logger", "timestamp", "service", "job_id"} <= started.keys()
    assert started.keys() - {"email", "attempt"} == stdlib.keys()
    assert failed["level"] == "error" and "ValueError: mailbox" in failed["exception"]
    assert ADDRESS not in json.dumps(failed) + json.dumps(stdlib)


@pytest.mark.parametrize(
    ("raised", "kept"),
    [(JobInterrupted(), False), (JobCancelled(), False), (Shutdown(), False), (ValueError(), True)],
    ids=["interrupted", "cancelled", "shutdown", "a job's own error"],
)
def test_dramatiqs_error_line_is_dropped_only_for_attempts_jobcore_ended(raised, kept):
    try:
        raise raised
    except BaseException:
        record = logging.LogRecord(
            "dramatiq.worker.WorkerThread",
            logging.ERROR,
            __file__,
            1,
            "Failed to process message %s with unhandled exception.",
            ("m",),
            sys.exc_info(),
        )
    assert EXPECTED_ENDS.filter(record) is kept


def test_a_worker_process_filters_its_worker_threads_lines(runtime):
    worker_middleware(runtime)
    assert EXPECTED_ENDS in logging.getLogger("dramatiq.worker.WorkerThread").filters
