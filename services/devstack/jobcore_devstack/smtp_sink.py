"""An SMTP sink on loopback: accepts every message, keeps it, and logs one line per message."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class ReceivedMail:
    sender: str
    recipients: list[str]
    message: Message

    @property
    def job_id(self) -> str | None:
        return self.message.get("X-Jobcore-Job-Id")


class _Handler:
    def __init__(self, on_message: Callable[[ReceivedMail], None] | None) -> None:
        self.messages: list[ReceivedMail] = []
        self.lock = threading.Lock()
        self.on_message = on_message

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = ReceivedMail(
            envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content)
        )
        with self.lock:
            self.messages.append(mail)
        if self.on_message:
            self.on_message(mail)
        return "250 Message accepted for delivery"


class SmtpSink:
    """``with SmtpSink(port) as sink: ... sink.messages``."""

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        on_message: Callable[[ReceivedMail], None] | None = None,
    ) -> None:
        self.handler = _Handler(on_message)
        self.controller = Controller(self.handler, hostname=host, port=port)
        self.host, self.port = host, port

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[ReceivedMail]:
        with self.handler.lock:
            return list(self.handler.messages)

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
