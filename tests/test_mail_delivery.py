"""E-mail jobs against real SMTP sinks: internationalised addresses, and which SMTP outcomes
are retried and which fail permanently."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import WorkerProcess, service_env, wait_for_state

from jobcore.intake.submission import SubmissionParser
from jobcore.runtime import Runtime, build_runtime
from jobcore.settings import ENV, Settings
from jobcore_devstack.redis_server import RedisServer, free_port
from jobcore_devstack.smtp_sink import SmtpSink


def _reply(address: str) -> str | None:
    """Refuses ``refused@…`` for good and ``busy@…`` for now; accepts everyone else."""
    if address.startswith("refused@"):
        return "550 5.1.1 No such user"
    if address.startswith("busy@"):
        return "451 4.3.0 Try again later"
    return None


@dataclass
class MailStack:
    runtime: Runtime
    sink: SmtpSink

    def send(self, to: str, *, max_attempts: int = 3) -> str:
        body = {
            "type": "welcome-email",
            "payload": {"email": to, "name": "Zoë"},
            "maxAttempts": max_attempts,
            "backoff": {"type": "fixed", "delayMs": 100},
        }
        submission = SubmissionParser(self.runtime.job_types).parse(body, now_ms=0)
        return self.runtime.jobs.submit(submission).job_id


def _stack(tmp: Path, *, smtputf8: bool) -> Iterator[MailStack]:
    sink = SmtpSink(free_port(), smtputf8=smtputf8, reply_to_recipient=_reply).start()
    server = RedisServer(tmp / "redis").start()
    env = service_env(server.url, sink.url, tmp)
    settings = Settings.from_env({k: v for k, v in env.items() if k in ENV.values()})
    worker = WorkerProcess(env, tmp / "worker.log", "--processes", "1", "--queues", "email")
    try:
        worker.start()
        yield MailStack(build_runtime(settings), sink)
    finally:
        worker.stop()
        server.stop()
        sink.stop()


@pytest.fixture(scope="module")
def ascii_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailStack]:
    """A server without SMTPUTF8."""
    yield from _stack(tmp_path_factory.mktemp("ascii"), smtputf8=False)


@pytest.fixture(scope="module")
def utf8(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailStack]:
    """A server offering SMTPUTF8."""
    yield from _stack(tmp_path_factory.mktemp("utf8"), smtputf8=True)


def test_a_non_ascii_local_part_fails_permanently_without_smtputf8(ascii_only):
    job_id = ascii_only.send("zoë@exämple.com", max_attempts=5)
    record = wait_for_state(ascii_only.runtime, job_id, "failed")
    assert record.attempts == 1
    assert "SMTPUTF8" in record.failed_reason and "failed permanently" in record.failed_reason
    assert ascii_only.runtime.store.events(job_id)[-1]["permanent"] is True
    assert not [m for m in ascii_only.sink.messages if m.job_id == job_id]


def test_a_non_ascii_domain_is_sent_idna_encoded(ascii_only):
    job_id = ascii_only.send("albert@exämple.com")
    wait_for_state(ascii_only.runtime, job_id, "completed")
    (mail,) = [m for m in ascii_only.sink.messages if m.job_id == job_id]
    assert mail.recipients == ["albert@xn--exmple-cua.com"]


def test_a_non_ascii_address_is_sent_as_written_with_smtputf8(utf8):
    job_id = utf8.send("zoë@exämple.com")
    record = wait_for_state(utf8.runtime, job_id, "completed")
    (mail,) = [m for m in utf8.sink.messages if m.job_id == job_id]
    assert mail.recipients == ["zoë@exämple.com"]
    assert "zoë@exämple.com" in str(mail.message["To"])
    assert record.result["messageId"] == mail.message["Message-ID"]


def test_a_permanent_smtp_refusal_fails_at_once(utf8):
    job_id = utf8.send("refused@example.com", max_attempts=5)
    record = wait_for_state(utf8.runtime, job_id, "failed")
    assert record.attempts == 1 and "550" in record.failed_reason
    assert record.failed_reason.startswith("failed permanently")


def test_a_transient_smtp_refusal_is_retried(utf8):
    job_id = utf8.send("busy@example.com", max_attempts=3)
    record = wait_for_state(utf8.runtime, job_id, "failed")
    assert record.attempts == 3 and "451" in record.failed_reason
    assert record.failed_reason.startswith("failed after 3 attempt(s)")


def test_a_refused_connection_is_retried(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    env = service_env(server.url, f"smtp://127.0.0.1:{free_port()}", tmp_path)
    settings = Settings.from_env({k: v for k, v in env.items() if k in ENV.values()})
    worker = WorkerProcess(env, tmp_path / "worker.log", "--processes", "1", "--queues", "email")
    try:
        worker.start()
        stack = MailStack(build_runtime(settings), None)  # type: ignore[arg-type]
        record = wait_for_state(
            stack.runtime, stack.send("a@example.com", max_attempts=2), "failed"
        )
        assert record.attempts == 2 and "Connection refused" in record.failed_reason
    finally:
        worker.stop()
        server.stop()
