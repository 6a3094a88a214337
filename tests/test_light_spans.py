"""Jobcore's light spans finish as the SDK's spans do: same parent, ids, kind, attributes,
events, links, status and sampling, encoded to the same OTLP bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
    use_span,
)

from jobcore.telemetry.light_spans import LightSpan, start_span
from jobcore.telemetry.otlp_encoding import encode_otlp_traces
from jobcore.telemetry.tracing import TRACER_NAME

CALLER = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, True, TraceFlags(1))
EARLIER = SpanContext(0x1AF7651916CD43DD8448EB211C80319C, 0xC7AD6B7169203331, True, TraceFlags(1))


@pytest.fixture
def provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    made = TracerProvider(resource=Resource.create({"service.name": "jobcore-test"}))
    made.add_span_processor(SimpleSpanProcessor(exporter))
    yield made, exporter
    made.shutdown()


def _attempt(span: Any) -> None:
    """What Jobcore does to a CONSUMER span whose job failed."""
    span.set_attribute("jobcore.outcome", "retrying")
    span.set_attributes({"jobcore.requeued": False, "jobcore.attempt": 2})
    span.update_name("process emails")
    try:
        raise ValueError("SMTP said no")
    except ValueError as exc:
        span.record_exception(exc, timestamp=1_700_000_000_000_000_123)
    span.set_status(Status(StatusCode.ERROR, "ValueError"))
    span.set_status(StatusCode.UNSET)  # ignored, as by the SDK
    span.add_event("note", {"k": 1}, timestamp=1_700_000_000_000_000_456)
    span.end(end_time=1_700_000_000_000_001_000)
    span.set_attribute("after.end", True)  # ignored once ended
    span.end()  # a second end changes nothing


def _comparable(span: ReadableSpan) -> dict[str, Any]:
    events = [
        (e.name, {k: v for k, v in e.attributes.items() if k != "exception.stacktrace"})
        for e in span.events
    ]
    return {
        "name": span.name,
        "kind": span.kind,
        "trace_id": span.context.trace_id,
        "parent": span.parent,
        "attributes": dict(span.attributes),
        "events": events,
        "links": [(link.context, dict(link.attributes or {})) for link in span.links],
        "status": (span.status.status_code, span.status.description),
        "end": span.end_time,
        "scope": span.instrumentation_scope,
        "resource": span.resource,
    }


def test_a_light_span_finishes_as_the_sdks_span_does(provider):
    made, exporter = provider
    parent = set_span_in_context(NonRecordingSpan(CALLER))
    attributes = {"messaging.system": "dramatiq", "jobcore.attempt": 1}
    sdk = made.get_tracer(TRACER_NAME).start_span(
        "process emails-q",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=[Link(EARLIER)],
    )
    light = start_span(
        "process emails-q",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=[Link(EARLIER)],
        provider=made,
    )
    assert isinstance(light, LightSpan)
    for span in (sdk, light):
        _attempt(span)
    theirs, ours = exporter.get_finished_spans()
    assert _comparable(ours) == _comparable(theirs)
    assert ours.context.span_id != theirs.context.span_id
    assert ours.context.trace_flags == TraceFlags(1) and not ours.context.is_remote
    assert "ValueError: SMTP said no" in ours.events[0].attributes["exception.stacktrace"]
    # And on the wire.
    wire = ExportTraceServiceRequest.FromString(encode_otlp_traces([ours]))
    assert wire == encode_spans([ours])


def test_a_light_span_is_the_current_span_its_children_and_logs_see(provider):
    made, exporter = provider
    light = start_span("send emails", kind=SpanKind.PRODUCER, attributes={}, provider=made)
    with use_span(light, end_on_exit=True):
        child = made.get_tracer("job-code").start_span("smtp")
        child.end()
    child_done, parent_done = exporter.get_finished_spans()
    assert child_done.parent == parent_done.context
    assert parent_done.parent is None  # a root: a new trace


def test_sampling_is_the_providers(provider):
    made, exporter = provider
    never = TracerProvider(sampler=ParentBased(root=TraceIdRatioBased(0.0)))
    never.add_span_processor(SimpleSpanProcessor(exporter))
    root = start_span("send q", kind=SpanKind.PRODUCER, attributes={}, provider=never)
    assert not root.is_recording() and not root.get_span_context().trace_flags.sampled
    root.end()
    unsampled_parent = SpanContext(CALLER.trace_id, CALLER.span_id, True, TraceFlags(0))
    child = start_span(
        "process q",
        context=set_span_in_context(NonRecordingSpan(unsampled_parent)),
        kind=SpanKind.CONSUMER,
        attributes={},
        provider=made,
    )
    assert not child.is_recording()
    assert child.get_span_context().trace_id == CALLER.trace_id
    child.end()
    assert exporter.get_finished_spans() == ()
    never.shutdown()
