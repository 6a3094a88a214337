"""``welcome-email`` and ``email``: real mail over SMTP to ``SMTP_URL``."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import urlsplit

from jobcore.context import JobContext

WELCOME_SUBJECT = "Welcome, {name}!"
WELCOME_BODY = "Hello {name},\n\n{message}\n"
DEFAULT_WELCOME_MESSAGE = "Welcome aboard."


def _smtp(job: JobContext) -> smtplib.SMTP:
    url = urlsplit(job.settings.smtp_url)
    host, port = url.hostname or "127.0.0.1", url.port or 25
    timeout = job.settings.smtp_timeout
    if url.scheme == "smtps":
        return smtplib.SMTP_SSL(host, port, timeout=timeout)
    client = smtplib.SMTP(host, port, timeout=timeout)
    if url.scheme == "smtp+starttls":
        client.starttls()
    if url.username:
        client.login(url.username, url.password or "")
    return client


class _Conversation:
    """Where an SMTP exchange got to: after DATA, a lost reply leaves the outcome unknown."""

    def __init__(self) -> None:
        self.data_sent = False

    def is_ambiguous(self, exc: BaseException) -> bool:
        # The server answered (any SMTPResponseException): a definite refusal.
        if isinstance(exc, smtplib.SMTPResponseException):
            return False
        return self.data_sent and isinstance(exc, (OSError, smtplib.SMTPException))


def deliver(job: JobContext, to: str, subject: str, body: str) -> dict[str, Any]:
    """Send one message at most once per job; the result is its Message-ID."""
    conversation = _Conversation()
    return job.effects.run_once(
        "smtp-send",
        lambda: _send(job, conversation, to, subject, body),
        conversation.is_ambiguous,
    )


def _send(
    job: JobContext, conversation: _Conversation, to: str, subject: str, body: str
) -> dict[str, Any]:
    message = EmailMessage()
    message["From"] = job.settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(idstring=job.id.replace("-", ""), domain="jobcore")
    message["X-Jobcore-Job-Id"] = job.id
    message.set_content(body)
    client = _smtp(job)
    try:
        client.ehlo_or_helo_if_needed()
        code, reply = client.mail(job.settings.smtp_from)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, job.settings.smtp_from)
        code, reply = client.rcpt(to)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({to: (code, reply)})
        conversation.data_sent = True
        code, reply = client.data(message.as_bytes())
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
    finally:
        _close_quietly(client)
    return {"messageId": message["Message-ID"]}


def _close_quietly(client: smtplib.SMTP) -> None:
    # The message is accepted (or refused) by now: a failing QUIT changes nothing.
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def send_welcome_email(job: JobContext) -> dict[str, Any]:
    payload = job.payload
    text = payload.get("message") or DEFAULT_WELCOME_MESSAGE
    return deliver(
        job,
        payload["email"],
        WELCOME_SUBJECT.format(name=payload["name"]),
        WELCOME_BODY.format(name=payload["name"], message=text),
    )


def send_email(job: JobContext) -> dict[str, Any]:
    payload = job.payload
    return deliver(job, payload["to"], payload["subject"], payload["body"])
