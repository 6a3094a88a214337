"""``welcome-email`` and ``email``: real mail over SMTP to ``SMTP_URL``.

What each SMTP outcome means for the job:

- accepted (250 after DATA): completed; the result is the Message-ID;
- a permanent reply (5xx), an address the server cannot take (a non-ASCII part before @
  without ``SMTPUTF8``), a message that cannot be encoded: fails permanently
  (``PermanentError``), never retried;
- a transient reply (4xx), a refused or dropped connection, a timeout before DATA: the
  attempt fails and is retried;
- no reply after the message was sent (a timeout after DATA): needs a human check (the
  mail may have gone out, so it is never sent again on its own).
"""

from __future__ import annotations

import smtplib
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import urlsplit

from jobcore.errors import PermanentError
from jobcore.execution.context import JobContext
from jobcore.model.email_addresses import AddressError, envelope_address, needs_smtputf8

WELCOME_SUBJECT = "Welcome, {name}!"
WELCOME_BODY = "Hello {name},\n\n{message}\n"
DEFAULT_WELCOME_MESSAGE = "Welcome aboard."
#: SMTP reply codes from this one up are permanent refusals (RFC 5321, 5yz).
PERMANENT_REPLY = 500


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
        # The server answered (any SMTPResponseException), or the job refused to send: a
        # definite outcome.
        if isinstance(exc, smtplib.SMTPResponseException | PermanentError):
            return False
        return self.data_sent and isinstance(exc, OSError | smtplib.SMTPException)


def _refused(code: int, reply: bytes | str, what: str) -> Exception:
    """The exception for a refusal: permanent for 5xx, a retryable error for 4xx."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    if code >= PERMANENT_REPLY:
        return PermanentError(f"the SMTP server refused {what} for good: {code} {text}")
    return smtplib.SMTPResponseException(code, f"{what}: {text}")


def deliver(job: JobContext, to: str, subject: str, body: str) -> dict[str, Any]:
    """Send one message at most once per job; the result is its Message-ID."""
    conversation = _Conversation()
    return job.effects.run_once(
        "smtp-send",
        lambda: _send(job, conversation, to, subject, body),
        conversation.is_ambiguous,
    )


def _message(job: JobContext, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = job.settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(idstring=job.id.replace("-", ""), domain="jobcore")
    message["X-Jobcore-Job-Id"] = job.id
    message.set_content(body)
    return message


def _send(
    job: JobContext, conversation: _Conversation, to: str, subject: str, body: str
) -> dict[str, Any]:
    try:
        utf8_needed = needs_smtputf8(to)
    except AddressError as exc:
        raise PermanentError(f"cannot send to {to!r}: {exc}") from exc
    client = _smtp(job)
    try:
        client.ehlo_or_helo_if_needed()
        utf8 = utf8_needed and client.has_extn("smtputf8")
        if utf8_needed and not utf8:
            raise PermanentError(
                f"the address {to!r} has a non-ASCII part before @, and the SMTP server does "
                "not offer SMTPUTF8 (RFC 6531), which sending to it needs"
            )
        recipient = envelope_address(to, smtputf8=utf8)
        try:
            # Headers as written when the session is UTF-8; ASCII (IDNA domain) otherwise.
            message = _message(job, to if utf8 else recipient, subject, body)
            data = message.as_bytes(policy=policy.SMTPUTF8 if utf8 else policy.SMTP)
        except (UnicodeError, ValueError) as exc:
            raise PermanentError(f"the message cannot be encoded: {exc}") from exc
        code, reply = client.mail(job.settings.smtp_from, ["SMTPUTF8"] if utf8 else [])
        if code != 250:
            raise _refused(code, reply, "the sender")
        code, reply = client.rcpt(recipient)
        if code not in (250, 251):
            raise _refused(code, reply, f"the recipient {to!r}")
        conversation.data_sent = True
        code, reply = client.data(data)
        if code != 250:
            raise _refused(code, reply, "the message")
    except smtplib.SMTPDataError as exc:
        # The server refused DATA itself (no 354): nothing was sent.
        raise _refused(exc.smtp_code, exc.smtp_error, "the message") from exc
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
