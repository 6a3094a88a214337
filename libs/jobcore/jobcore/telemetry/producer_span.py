"""The PRODUCER span of a submission, ``send <queue>``: a child of the current span (the
API's request) or a new trace (scheduler, command line); the record keeps its ids."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from jobcore.telemetry.light_spans import start_span
from jobcore.telemetry.tracing import MESSAGING_SYSTEM, traceparent_of


@dataclass
class SentMessage:
    """The PRODUCER span of one submission and the trace ids the record keeps."""

    span: trace.Span

    @property
    def trace_id(self) -> str:
        """32 hex digits, or empty when the SDK is not set up in this process."""
        span_context = self.span.get_span_context()
        return trace.format_trace_id(span_context.trace_id) if span_context.is_valid else ""

    @property
    def traceparent(self) -> str:
        return traceparent_of(self.span.get_span_context())

    def accepted(self, job_id: str, *, duplicate: bool) -> None:
        self.span.set_attribute("messaging.message.id", job_id)
        if duplicate:
            # An idempotent replay sends nothing: the job's trace is the first request's.
            self.span.set_attribute("jobcore.duplicate", True)


class _Sending:
    """The block of ``send_span`` (a class, not a generator-based context manager, which
    builds a generator each time it is entered: this one runs once per submission)."""

    __slots__ = ("sent", "token")

    def __init__(self, queue: str, job_type: str) -> None:
        span = start_span(
            f"send {queue}", kind=SpanKind.PRODUCER, attributes=_send_attributes(queue, job_type)
        )
        self.sent = SentMessage(span)
        self.token = context.attach(trace.set_span_in_context(span))

    def __enter__(self) -> SentMessage:
        return self.sent

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        span = self.sent.span
        try:
            if isinstance(exc, Exception) and span.is_recording():
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        finally:
            context.detach(self.token)
            span.end()


def send_span(queue: str, job_type: str) -> AbstractContextManager[SentMessage]:
    """``send <queue>``: a child of the current span, or a new trace (scheduler, CLI).

    The current span while the block runs; an exception escaping it is recorded on the span
    (as ``start_as_current_span`` would, without its extra layers of context managers).
    """
    return _Sending(queue, job_type)


@functools.lru_cache(maxsize=256)
def _send_attributes(queue: str, job_type: str) -> Mapping[str, str | int]:
    """The PRODUCER span's attributes (the SDK copies them into each span)."""
    return MappingProxyType(
        {
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": queue,
            "jobcore.job.type": job_type,
            "jobcore.attempt": 1,
        }
    )
