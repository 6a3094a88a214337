"""Jobcore's own OTLP span encoding sends exactly what the exporter's encoder would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import trace_exporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from jobcore.telemetry.otlp_encoding import encode_otlp_traces, use_fast_otlp_encoding


@pytest.fixture
def finished() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "jobcore-test", "deployment": "é ✓"}),
        span_limits=SpanLimits(max_attributes=12, max_events=2, max_links=2),
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _same(spans: list[ReadableSpan]) -> None:
    ours = ExportTraceServiceRequest.FromString(encode_otlp_traces(spans))
    theirs = encode_spans(spans)
    assert ours == theirs, f"ours:\n{ours}\ntheirs:\n{theirs}"


def _remote(trace_id: int, span_id: int, state: TraceState | None = None) -> SpanContext:
    return SpanContext(trace_id, span_id, True, TraceFlags(1), state or TraceState())


def test_the_spans_of_a_job_encode_as_the_exporter_encodes_them(finished):
    provider, exporter = finished
    tracer = provider.get_tracer("jobcore")
    caller = _remote(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331)
    with tracer.start_as_current_span(
        "POST /jobs",
        context=set_span_in_context(NonRecordingSpan(caller)),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "POST", "url.path": "/jobs"},
    ) as server:
        with tracer.start_as_current_span(
            "send default",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "dramatiq", "jobcore.attempt": 1},
        ) as producer:
            producer.set_attribute("messaging.message.id", "Ab3_x-9")
        server.set_attribute("http.response.status_code", 202)
    previous = _remote(0x1, 0x2, TraceState([("vendor", "value")]))
    consumer = tracer.start_span(
        "process default",
        kind=SpanKind.CONSUMER,
        links=[Link(previous, {"why": "retry", "n": 2}), Link(caller)],
        attributes={"jobcore.requeued": True},
    )
    consumer.record_exception(ValueError("boom ✗"))
    consumer.set_status(Status(StatusCode.ERROR, "ValueError: boom"))
    consumer.end()
    _same(list(exporter.get_finished_spans()))


def test_every_attribute_type_and_the_limits_encode_as_the_exporter_encodes_them(finished):
    provider, exporter = finished
    tracer = provider.get_tracer("other", "1.2.3", schema_url="https://example.com/schema")
    attributes = {
        "text": "ünïcode " * 20,
        "empty": "",
        "yes": True,
        "no": False,
        "zero": 0,
        "negative": -(2**63),
        "big": 2**63 - 1,
        "ratio": -0.25,
        "texts": ("a", "", "ç"),
        "numbers": [1, -2, 3],
        "flags": [True, False],
        "floats": (1.5, float("inf")),
    }
    with tracer.start_as_current_span("all types", attributes=attributes) as span:
        span.set_attribute("dropped", "over the limit")
        for name in ("one", "two", "three"):
            span.add_event(name, {"at": name})
        span.set_status(Status(StatusCode.OK))
    with tracer.start_as_current_span("", kind=SpanKind.CLIENT):
        pass
    with provider.get_tracer("jobcore").start_as_current_span("third scope"):
        pass
    _same(list(exporter.get_finished_spans()))


def test_a_batch_it_cannot_encode_goes_through_the_exporters_encoder(finished):
    provider, exporter = finished
    with provider.get_tracer("jobcore").start_as_current_span("huge") as span:
        span.set_attribute("beyond 64 bits", 2**70)
    spans = list(exporter.get_finished_spans())
    with pytest.raises(ValueError):
        encode_otlp_traces(spans)
    use_fast_otlp_encoding()
    patched = trace_exporter.encode_spans  # type: ignore[attr-defined]
    assert patched.jobcore_fast
    assert patched(spans) == encode_spans(spans)


def test_the_exporter_encodes_with_jobcores_encoder_once_installed(finished):
    provider, exporter = finished
    with provider.get_tracer("jobcore").start_as_current_span("one"):
        pass
    spans = list(exporter.get_finished_spans())
    use_fast_otlp_encoding()
    use_fast_otlp_encoding()  # a second call keeps one wrapper
    patched = trace_exporter.encode_spans  # type: ignore[attr-defined]
    data = patched(spans).SerializePartialToString()
    assert data == encode_otlp_traces(spans)
    assert ExportTraceServiceRequest.FromString(data) == encode_spans(spans)


def test_values_seen_once_never_crowd_out_those_that_repeat():
    from jobcore.telemetry.otlp_encoding import _Repeats

    remembered = _Repeats(size=8)
    for n in range(100):
        remembered.offer(f"job-{n}", b"once")  # one-off values: never kept
        remembered.offer("queue", b"q")  # repeats: kept from its second sighting
    assert remembered.kept == {"queue": b"q"}
