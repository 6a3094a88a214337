"""An SMTP sink on loopback: accepts every message, keeps it, and logs one line per message."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
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


#: Decides the reply to one recipient: ``None`` accepts it, a string (``"550 No such user"``)
#: is the reply the sink sends instead.
RecipientReply = Callable[[str], str | None]


class _Handler:
    def __init__(
        self,
        on_message: Callable[[ReceivedMail], None] | None,
        reply_to_recipient: RecipientReply | None,
    ) -> None:
        self.messages: list[ReceivedMail] = []
        self.lock = threading.Lock()
        self.on_message = on_message
        self.reply_to_recipient = reply_to_recipient

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self.reply_to_recipient(address) if self.reply_to_recipient else None
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = ReceivedMail(
            envelope.mail_from,
            list(envelope.rcpt_tos),
            # UTF-8 headers (SMTPUTF8 mail) read as text, not as undecodable bytes.
            message_from_bytes(envelope.content, policy=policy.default),
        )
        with self.lock:
            self.messages.append(mail)
        if self.on_message:
            self.on_message(mail)
        return "250 Message accepted for delivery"


class SmtpSink:
    """``with SmtpSink(port) as sink: ... sink.messages``.

    It offers ``SMTPUTF8`` (internationalised addresses) unless ``smtputf8=False``, and
    ``reply_to_recipient`` can refuse recipients (for tests of refusals).
    """

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        on_message: Callable[[ReceivedMail], None] | None = None,
        *,
        smtputf8: bool = True,
        reply_to_recipient: RecipientReply | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self.handler = _Handler(on_message, reply_to_recipient)
        # ``server_hostname`` spares a name lookup per connection (``socket.getfqdn()``).
        self.controller = Controller(
            self.handler,
            hostname=host,
            port=port,
            enable_SMTPUTF8=smtputf8,
            server_hostname=server_hostname,
        )
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
