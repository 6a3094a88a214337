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
    TraceState,
    set_span_in_context,
    use_span,
)

from jobcore.telemetry.light_spans import LightSpan, start_span
from jobcore.telemetry.otlp_encoding import encode_otlp_traces
from jobcore.telemetry.sampling import FollowParent
from jobcore.telemetry.tracing import TRACER_NAME, OtlpBatchSpanProcessor

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


def _attempt_spans(made: TracerProvider, light_provider: TracerProvider) -> tuple[Any, Any]:
    """The same CONSUMER span started by the SDK (of ``made``) and light (of ``light_provider``)."""
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
        provider=light_provider,
    )
    return sdk, light


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
    sdk, light = _attempt_spans(made, made)
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


def test_the_otlp_batch_processor_takes_light_spans_as_they_are(provider):
    """With the OTLP export's processor as the provider's one processor, an ended light span
    is queued itself (no ``ReadableSpan`` copy), and encodes to what the SDK's span does."""
    made, exporter = provider
    queued: list[Any] = []

    class Capture(InMemorySpanExporter):
        def export(self, spans: Any) -> Any:
            queued.extend(spans)
            return super().export(spans)

    direct = TracerProvider(resource=made.resource)
    direct.add_span_processor(OtlpBatchSpanProcessor(Capture()))
    sdk, light = _attempt_spans(made, direct)
    for span in (sdk, light):
        _attempt(span)
    direct.force_flush()
    (theirs,) = exporter.get_finished_spans()
    assert queued == [light]
    assert _comparable(light) == _comparable(theirs)
    assert light.resource is direct.resource
    # The fast encoder and the exporter's own read it as they read the SDK's span.
    wire = ExportTraceServiceRequest.FromString(encode_otlp_traces([light]))
    assert wire == encode_spans([light])
    assert wire.resource_spans[0].scope_spans[0].spans[0].name == theirs.name
    direct.shutdown()


def test_under_follow_parent_a_child_takes_its_parents_decision_and_trace_state():
    exporter = InMemorySpanExporter()
    made = TracerProvider(sampler=FollowParent(root=TraceIdRatioBased(0.0)))
    made.add_span_processor(SimpleSpanProcessor(exporter))
    state = TraceState([("vendor", "value")])
    for flags in (TraceFlags(1), TraceFlags(0)):
        caller = SpanContext(CALLER.trace_id, CALLER.span_id, True, flags, state)
        child = start_span(
            "process q",
            context=set_span_in_context(NonRecordingSpan(caller)),
            kind=SpanKind.CONSUMER,
            attributes={"jobcore.attempt": 1},
            provider=made,
        )
        got = child.get_span_context()
        assert child.is_recording() is bool(flags.sampled)
        assert got.trace_flags == flags and got.trace_state == state
        assert got.trace_id == CALLER.trace_id
        child.end()
    (kept,) = exporter.get_finished_spans()
    assert kept.parent.span_id == CALLER.span_id and kept.attributes == {"jobcore.attempt": 1}
    # No parent: the root sampler decides (here: never).
    assert not start_span(
        "send q", kind=SpanKind.PRODUCER, attributes={}, provider=made
    ).is_recording()
    made.shutdown()


def test_with_the_sdk_disabled_spans_are_the_providers_own_and_record_nothing(monkeypatch):
    """``OTEL_SDK_DISABLED=true``: the SDK's provider hands out a no-op tracer, whose spans
    Jobcore uses as they are (before, every request and job failed on it)."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    disabled = TracerProvider()
    span = start_span("send q", kind=SpanKind.PRODUCER, attributes={"a": 1}, provider=disabled)
    assert not isinstance(span, LightSpan)
    assert not span.is_recording()
    span.set_attribute("jobcore.outcome", "sent")
    span.end()
