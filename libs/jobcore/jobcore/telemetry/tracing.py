"""OpenTelemetry for every Jobcore process: SDK set-up, the tracer, W3C trace context.

One trace per job: the API's server span → a PRODUCER span ``send <queue>``
(``producer_span.py``) → a CONSUMER span ``process <queue>`` per attempt
(``message_tracing.py``), parented to the producer span through the W3C ``traceparent``
carried in the message options. The SDK and propagation are always on; spans leave the
process only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
is set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from jobcore.settings import ENV, parse_bool
from jobcore.telemetry.sampling import DropUnparentedClientSpans, FollowParent

#: ``messaging.system`` of every message span.
MESSAGING_SYSTEM = "dramatiq"
#: Environment variables that turn the OTLP/HTTP exporter on.
EXPORTER_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
#: Ratio variable of the standard ``OTEL_TRACES_SAMPLER=parentbased_traceidratio``.
SAMPLER_RATIO_VAR = "OTEL_TRACES_SAMPLER_ARG"
#: Instrumentation scope of Jobcore's own spans.
TRACER_NAME = "jobcore"

W3C = TraceContextTextMapPropagator()
#: A version-00 ``traceparent``: lower-case hex fields, as the W3C recommendation requires.
_HEX = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_configured_pid: int | None = None
_provider: TracerProvider | None = None


class OtlpBatchSpanProcessor(BatchSpanProcessor):
    """The batch processor of the OTLP export ``configure_tracing`` sets up. Its exporter
    encodes with ``otlp_encoding``, which reads Jobcore's light spans as they are: when it is
    a provider's one processor, light spans reach it without a ``ReadableSpan`` copy
    (``light_spans``)."""


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
        resource=resource, sampler=FollowParent(root=DropUnparentedClientSpans(_ratio(env)))
    )
    if any(env.get(name) for name in EXPORTER_ENDPOINT_VARS):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        from jobcore.telemetry.otlp_encoding import use_fast_otlp_encoding

        use_fast_otlp_encoding()
        provider.add_span_processor(OtlpBatchSpanProcessor(OTLPSpanExporter()))
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


def redis_commands_traced() -> bool:
    """Whether Redis commands get CLIENT spans (``JOBCORE_TRACE_REDIS``): the instrumentation
    traces redis-py's own call paths, so a lean path of Jobcore's must step aside for it."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    return bool(RedisInstrumentor().is_instrumented_by_opentelemetry)


def shutdown_tracing() -> None:
    """Export what is buffered and stop; Dramatiq workers leave by ``os._exit`` (no atexit)."""
    if _provider is not None and _configured_pid == os.getpid():
        _provider.force_flush()
        _provider.shutdown()


def traceparent_of(span_context: trace.SpanContext) -> str:
    """The W3C ``traceparent`` header value naming ``span_context``; empty when invalid."""
    if not span_context.is_valid:
        return ""
    return (
        f"00-{trace.format_trace_id(span_context.trace_id)}-"
        f"{trace.format_span_id(span_context.span_id)}-{int(span_context.trace_flags):02x}"
    )


def current_traceparent() -> str:
    """The ``traceparent`` of the current span ('' outside one)."""
    return traceparent_of(trace.get_current_span().get_span_context())


def span_context_of(traceparent: str) -> trace.SpanContext | None:
    """The remote span context a ``traceparent`` value names, or ``None``.

    The version-00 form Jobcore writes (``00-<32 hex>-<16 hex>-<2 hex>``) is read directly:
    the propagator's regular expression and carrier lookups cost a few percent of a job's
    worker CPU. Any other form goes through the propagator, so both read the same values.
    """
    if not traceparent:
        return None
    if _HEX.fullmatch(traceparent):
        trace_id, span_id = int(traceparent[3:35], 16), int(traceparent[36:52], 16)
        if not trace_id or not span_id:
            return None
        flags = trace.TraceFlags(int(traceparent[53:55], 16))
        return trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)
    found = trace.get_current_span(W3C.extract({"traceparent": traceparent})).get_span_context()
    return found if found.is_valid else None


def parent_context(traceparent: str) -> Context | None:
    """A context whose current span is the remote parent ``traceparent`` names, or ``None``."""
    found = span_context_of(traceparent)
    return trace.set_span_in_context(trace.NonRecordingSpan(found)) if found else None
