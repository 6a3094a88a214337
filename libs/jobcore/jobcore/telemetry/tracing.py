"""OpenTelemetry for every Jobcore process: SDK set-up, W3C propagation and job message spans.

One trace per job: the API's server span → a PRODUCER span ``send <queue>`` (``send_span``)
→ a CONSUMER span ``process <queue>`` per attempt (``MessageTracing``), parented to the
producer span through the W3C ``traceparent`` carried in the message options. A retry's
message carries the same ``traceparent`` plus the previous attempt's span, which the next
attempt links to. The SDK and propagation are always on; spans leave the process only when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, Shutdown
from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from jobcore.broker import TRACEPARENT_OPTION
from jobcore.execution.context import JobContext, JobInterrupted
from jobcore.model.states import AttemptOutcome
from jobcore.settings import ENV, parse_bool
from jobcore.store import keys

#: Message option: W3C ``traceparent`` of the attempt that scheduled this retry (for a link).
PREVIOUS_ATTEMPT_OPTION = "jobcore_previous_attempt"
#: ``messaging.system`` of every message span.
MESSAGING_SYSTEM = "dramatiq"
#: Environment variables that turn the OTLP/HTTP exporter on.
EXPORTER_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
#: Ratio variable of the standard ``OTEL_TRACES_SAMPLER=parentbased_traceidratio``.
SAMPLER_RATIO_VAR = "OTEL_TRACES_SAMPLER_ARG"
#: Instrumentation scope of Jobcore's own spans.
TRACER_NAME = "jobcore"

_W3C = TraceContextTextMapPropagator()
_configured_pid: int | None = None
_provider: TracerProvider | None = None
_tracer_of: tuple[trace.TracerProvider, trace.Tracer] | None = None


class DropUnparentedClientSpans(Sampler):
    """Root sampler: Redis (CLIENT) spans are kept only inside a request or job span.

    Heartbeats, sweeps and the broker's polling run outside any span; tracing them would
    bury the job traces. Under ``ParentBased`` a CLIENT span with a parent follows it.
    Other root spans are kept with probability ``ratio`` (by trace id).
    """

    def __init__(self, ratio: float = 1.0) -> None:
        self.ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return self.ratio.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return "DropUnparentedClientSpans"


def configure_tracing(service_name: str, environ: Mapping[str, str] | None = None) -> None:
    """Set up the SDK once in this process; call it after any fork (gunicorn worker, Dramatiq).

    A provider built before a fork would carry its export thread's state into every child,
    so each process builds its own; a second call in the same process does nothing.
    """
    global _configured_pid, _provider
    if _configured_pid == os.getpid():
        return
    env = os.environ if environ is None else environ
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(root=DropUnparentedClientSpans(_ratio(env)))
    )
    if any(env.get(name) for name in EXPORTER_ENDPOINT_VARS):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        from jobcore.telemetry.otlp_encoding import use_fast_otlp_encoding

        use_fast_otlp_encoding()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    # A span per Redis command costs about 15 % of a job's CPU: opt in when you need them.
    if parse_bool(env.get(ENV["trace_redis"], "false")):
        _instrument_redis(provider)
    _configured_pid, _provider = os.getpid(), provider


def _ratio(env: Mapping[str, str]) -> float:
    """The head-sampling ratio (``OTEL_TRACES_SAMPLER_ARG``, 0–1; default: every trace)."""
    try:
        return min(max(float(env.get(SAMPLER_RATIO_VAR, "1")), 0.0), 1.0)
    except ValueError:
        return 1.0


def _instrument_redis(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    instrumentor = RedisInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)


def shutdown_tracing() -> None:
    """Export what is buffered and stop; Dramatiq workers leave by ``os._exit`` (no atexit)."""
    if _provider is not None and _configured_pid == os.getpid():
        _provider.force_flush()
        _provider.shutdown()


def tracer() -> trace.Tracer:
    """Jobcore's tracer from the current provider.

    Remembered per provider: the SDK's ``get_tracer`` builds two scope objects and resets a
    warnings filter on every call, a measurable share of a request's CPU.
    """
    global _tracer_of
    provider = trace.get_tracer_provider()
    cached = _tracer_of
    if cached is not None and cached[0] is provider:
        return cached[1]
    found = provider.get_tracer(TRACER_NAME)
    _tracer_of = (provider, found)
    return found


def traceparent_of(span_context: trace.SpanContext) -> str:
    """The W3C ``traceparent`` header value naming ``span_context``; empty when invalid."""
    if not span_context.is_valid:
        return ""
    return (
        f"00-{trace.format_trace_id(span_context.trace_id)}-"
        f"{trace.format_span_id(span_context.span_id)}-{int(span_context.trace_flags):02x}"
    )


def span_context_of(traceparent: str) -> trace.SpanContext | None:
    """The remote span context a ``traceparent`` value names, or ``None``."""
    if not traceparent:
        return None
    found = trace.get_current_span(_W3C.extract({"traceparent": traceparent})).get_span_context()
    return found if found.is_valid else None


# --- producer -------------------------------------------------------------------------


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


@contextmanager
def send_span(queue: str, job_type: str) -> Iterator[SentMessage]:
    """``send <queue>``: a child of the current span, or a new trace (scheduler, CLI).

    The current span while the block runs; an exception escaping it is recorded on the span
    (as ``start_as_current_span`` would, without its extra layers of context managers).
    """
    span = tracer().start_span(
        f"send {queue}", kind=SpanKind.PRODUCER, attributes=_send_attributes(queue, job_type)
    )
    token = context.attach(trace.set_span_in_context(span))
    try:
        yield SentMessage(span)
    except Exception as exc:
        if span.is_recording():
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        context.detach(token)
        span.end()


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


# --- consumer -------------------------------------------------------------------------


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
        parent = _W3C.extract({"traceparent": parent_traceparent}) if parent_traceparent else None
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


def stored_traceparent(client: Any) -> Callable[[str], str]:
    """Reads a job record's ``traceparent`` (kept since submission) for ``MessageTracing``."""

    def read(job_id: str) -> str:
        return str(client.hget(keys.job(job_id), "traceparent") or "")

    return read


class JobSpanDetails:
    """Names the job and the attempt's outcome on its CONSUMER span (an ``AttemptListener``
    of ``JobLifecycle``; the span is current while the lifecycle runs)."""

    def attempt_started(self, job: JobContext) -> None:
        span = trace.get_current_span()
        span.set_attribute("jobcore.job.type", job.type)
        span.set_attribute("jobcore.attempt", job.attempt)

    def attempt_ended(
        self, job: JobContext, outcome: AttemptOutcome, exception: BaseException | None
    ) -> None:
        trace.get_current_span().set_attribute("jobcore.outcome", str(outcome))
