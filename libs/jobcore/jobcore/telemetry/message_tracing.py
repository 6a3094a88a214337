"""The CONSUMER span of each attempt, ``process <queue>``, and the W3C context carried in
message options (a Dramatiq middleware)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, Shutdown
from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from jobcore.broker import claim_of
from jobcore.errors import JobInterrupted
from jobcore.message_options import PREVIOUS_ATTEMPT_OPTION, TRACEPARENT_OPTION
from jobcore.telemetry.light_spans import start_span
from jobcore.telemetry.tracing import (
    MESSAGING_SYSTEM,
    parent_context,
    shutdown_tracing,
    span_context_of,
)


@dataclass
class _Consumption:
    """The span of the message a worker thread is processing."""

    message_id: str
    parent_traceparent: str
    span: trace.Span
    token: object = field(repr=False)


class MessageTracing(Middleware):
    """Spans each attempt (CONSUMER) under the job's PRODUCER span, which every message
    names in its options (the scripts that send messages copy it from the record), linked
    to the attempt or request that asked for it (``jobcore_previous_attempt``).

    Place it before ``JobLifecycle``: its ``before`` hooks run first and its ``after``
    hooks last, so the record's transitions happen inside the span.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def _current(self) -> _Consumption | None:
        return getattr(self._local, "consumption", None)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        options = message.options
        parent_traceparent = options.get(TRACEPARENT_OPTION) or ""
        parent = parent_context(parent_traceparent)
        previous = span_context_of(options.get(PREVIOUS_ATTEMPT_OPTION) or "")
        attributes: dict[str, str | int] = {
            "messaging.system": MESSAGING_SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": message.queue_name,
            "messaging.message.id": message.message_id,
        }
        claim = claim_of(message)
        if claim is not None:
            # Given at the start: an attribute set later takes the span's lock each time.
            attributes["jobcore.job.type"] = claim.job_type
            attributes["jobcore.attempt"] = claim.attempt
        span = start_span(
            f"process {message.queue_name}",
            context=parent or Context(),
            kind=SpanKind.CONSUMER,
            links=[Link(previous)] if previous else (),
            attributes=attributes,
        )
        token = context.attach(trace.set_span_in_context(span))
        self._local.consumption = _Consumption(message.message_id, parent_traceparent, span, token)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        consumption = self._current()
        if consumption is None:
            return
        if isinstance(exception, JobInterrupted | Shutdown):
            consumption.span.set_attribute("jobcore.requeued", True)
        elif exception is not None:
            consumption.span.record_exception(exception)
            consumption.span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
        self._end(consumption)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        consumption = self._current()
        if consumption is not None:
            consumption.span.set_attribute("jobcore.skipped", True)
            self._end(consumption)

    def _end(self, consumption: _Consumption) -> None:
        self._local.consumption = None
        consumption.span.end()
        context.detach(consumption.token)  # type: ignore[arg-type]

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        shutdown_tracing()
