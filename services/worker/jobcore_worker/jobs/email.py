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


def deliver(job: JobContext, to: str, subject: str, body: str) -> dict[str, Any]:
    """Send one message; the result is its Message-ID."""
    message = EmailMessage()
    message["From"] = job.settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(idstring=job.id.replace("-", ""), domain="jobcore")
    message["X-Jobcore-Job-Id"] = job.id
    message.set_content(body)
    with _smtp(job) as client:
        client.send_message(message)
    return {"messageId": message["Message-ID"]}


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
