"""The CONSUMER span of each attempt, ``process <queue>``, and the W3C context carried in
message options (a Dramatiq middleware)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, Shutdown
from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from jobcore.errors import JobInterrupted
from jobcore.message_options import PREVIOUS_ATTEMPT_OPTION, TRACEPARENT_OPTION
from jobcore.telemetry.tracing import (
    MESSAGING_SYSTEM,
    W3C,
    shutdown_tracing,
    span_context_of,
    traceparent_of,
    tracer,
)


@dataclass
class _Consumption:
    """The span of the message a worker thread is processing."""

    message_id: str
    parent_traceparent: str
    span: trace.Span
    token: object = field(repr=False)


class MessageTracing(Middleware):
    """Carries the W3C context in message options and spans each attempt (CONSUMER).

    Place it before ``JobLifecycle``: its ``before`` hooks run first and its ``after``
    hooks last, so the record's transitions (and a retry's enqueue) happen inside the span.
    ``traceparent_of_job`` reads the record's stored ``traceparent`` for messages sent
    without one (the sweeper's re-sends).
    """

    def __init__(self, traceparent_of_job: Callable[[str], str] = lambda _job_id: "") -> None:
        self.traceparent_of_job = traceparent_of_job
        self._local = threading.local()

    def _current(self) -> _Consumption | None:
        return getattr(self._local, "consumption", None)

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        options = message.options
        if TRACEPARENT_OPTION in options:
            return
        consumption = self._current()
        if consumption is not None and consumption.message_id == message.message_id:
            # A retry sent by the attempt that failed: same parent, link to this attempt.
            if consumption.parent_traceparent:
                options[TRACEPARENT_OPTION] = consumption.parent_traceparent
            options[PREVIOUS_ATTEMPT_OPTION] = traceparent_of(consumption.span.get_span_context())
            return
        # Anything else (a manual retry over HTTP): link the span that asked for it.
        asking = traceparent_of(trace.get_current_span().get_span_context())
        if asking:
            options[PREVIOUS_ATTEMPT_OPTION] = asking

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        options = message.options
        parent_traceparent = options.get(TRACEPARENT_OPTION) or ""
        if not parent_traceparent:
            try:
                parent_traceparent = self.traceparent_of_job(message.message_id)
            except Exception:
                parent_traceparent = ""
        parent = W3C.extract({"traceparent": parent_traceparent}) if parent_traceparent else None
        previous = span_context_of(options.get(PREVIOUS_ATTEMPT_OPTION) or "")
        span = tracer().start_span(
            f"process {message.queue_name}",
            context=parent or Context(),
            kind=SpanKind.CONSUMER,
            links=[Link(previous)] if previous else None,
            attributes={
                "messaging.system": MESSAGING_SYSTEM,
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.destination.name": message.queue_name,
                "messaging.message.id": message.message_id,
            },
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
