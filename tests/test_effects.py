"""Guarded e-mail sends against an SMTP server that accepts the message but answers late."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from conftest import WorkerProcess, service_env, wait_until

from jobcore.intake.submission import SubmissionParser
from jobcore.runtime import build_runtime
from jobcore.settings import ENV, Settings
from jobcore_devstack.redis_server import RedisServer, free_port


class SlowToConfirm:
    """Keeps every message, then answers DATA only after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.content)
        await asyncio.sleep(self.delay)
        return "250 OK"


def test_an_smtp_timeout_after_data_is_ambiguous_and_never_resent(tmp_path: Path):
    handler = SlowToConfirm(delay=4)
    port = free_port()
    smtp = Controller(handler, hostname="127.0.0.1", port=port)
    smtp.start()
    server = RedisServer(tmp_path / "redis").start()
    try:
        env = service_env(server.url, f"smtp://127.0.0.1:{port}", tmp_path, SMTP_TIMEOUT="1s")
        settings = Settings.from_env({k: v for k, v in env.items() if k in ENV.values()})
        runtime = build_runtime(settings)
        body = {
            "type": "email",
            "payload": {"to": "a@example.com", "subject": "once", "body": "exactly once"},
            "maxAttempts": 3,
            "backoff": {"type": "fixed", "delayMs": 100},
        }
        job_id = runtime.jobs.submit(
            SubmissionParser(runtime.job_types).parse(body, now_ms=0)
        ).job_id
        worker = WorkerProcess(env, tmp_path / "worker.log", "--processes", "1").start()
        try:
            wait_until(lambda: runtime.store.get(job_id).state == "failed", timeout=30)
            time.sleep(1)  # a wrongful retry would have sent again by now
        finally:
            worker.stop()
        record = runtime.store.get(job_id)
        assert record.failed_reason.startswith("needs a human check")
        assert "smtp-send" in record.failed_reason
        assert record.attempts == 1
        assert len(handler.received) == 1
    finally:
        server.stop()
        smtp.stop()
