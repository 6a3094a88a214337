"""Spans to OTLP/HTTP protobuf bytes, fast.

The OTLP exporter builds a protobuf object per span, attribute and value, then serialises
them: about 50-80 µs per span, a fifth of an API request's CPU (two spans each). The same
bytes are written here straight in the protobuf wire format (opentelemetry-proto's
trace.proto and trace_service.proto; field numbers below), about three times faster;
key/value pairs that repeat from span to span (``messaging.system = dramatiq``) are encoded
once. A batch this encoder cannot take (an attribute type it does not know, an integer
beyond 64 bits) goes through the exporter's own encoder, as before.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry import trace

_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack
#: ``Span.flags``/``Link.flags``: "has is_remote", and "is remote".
_FLAG_HAS_IS_REMOTE = 0x100
_FLAG_IS_REMOTE = 0x200
#: Most encodings remembered per kind, and the longest string value remembered.
_KV_CACHE_SIZE = 4096
_KV_CACHE_TEXT = 64


class _Repeats:
    """Encodings of what repeats from span to span, remembered on a value's second sighting:
    values seen once (a job's id, a path naming a job) never crowd out those that repeat
    (a queue, a route). At most ``size`` remembered, and ``size`` sightings pending."""

    def __init__(self, size: int = _KV_CACHE_SIZE) -> None:
        self.size = size
        self.kept: dict[Any, bytes] = {}
        self._seen_once: set[Any] = set()

    def offer(self, key: Any, encoded: bytes) -> None:
        if key in self._seen_once:
            if len(self.kept) < self.size:
                self.kept[key] = encoded
            return
        if len(self._seen_once) >= self.size:
            self._seen_once.clear()
        self._seen_once.add(key)


_kv_cache = _Repeats()
_field_cache = _Repeats()
_name_cache = _Repeats()
_header_cache: dict[int, tuple[object, bytes]] = {}


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes, message): tag, length, payload."""
    size = len(payload)
    return tag + (bytes((size,)) if size < 0x80 else _varint(size)) + payload


def _text(tag: bytes, value: str) -> bytes:
    return _field(tag, value.encode("utf-8")) if value else b""


def _any_value(value: Any) -> bytes:
    """``AnyValue``: string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", value.encode("utf-8"))
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError("an integer attribute beyond 64 bits")
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        pairs = b"".join(_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items())
        return _field(b"\x32", pairs)
    raise TypeError(f"cannot encode a {type(value).__name__} attribute")


def _key_value(key: str, value: Any) -> bytes:
    """``KeyValue``: key 1, value 2."""
    kind = type(value)
    cacheable = kind is bool or kind is int or (kind is str and len(value) <= _KV_CACHE_TEXT)
    if cacheable:
        found = _kv_cache.kept.get((key, kind, value))
        if found is not None:
            return found
    encoded = _field(b"\x0a", key.encode("utf-8")) + _field(b"\x12", _any_value(value))
    if cacheable:
        _kv_cache.offer((key, kind, value), encoded)
    return encoded


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    if not attributes:
        return b""
    return b"".join([_attribute(tag, k, v) for k, v in attributes.items()])


def _attribute(tag: bytes, key: str, value: Any) -> bytes:
    """One ``KeyValue`` field under ``tag``, remembered whole when it repeats."""
    kind = type(value)
    cacheable = kind is bool or kind is int or (kind is str and len(value) <= _KV_CACHE_TEXT)
    if cacheable:
        found = _field_cache.kept.get((tag, key, kind, value))
        if found is not None:
            return found
    encoded = _field(tag, _key_value(key, value))
    if cacheable:
        _field_cache.offer((tag, key, kind, value), encoded)
    return encoded


def _flags(span_context: trace.SpanContext | None) -> bytes:
    remote = span_context is not None and span_context.is_remote
    return _FIXED32(_FLAG_HAS_IS_REMOTE | (_FLAG_IS_REMOTE if remote else 0))


def _trace_state(state: trace.TraceState | None) -> str:
    return ",".join(f"{k}={v}" for k, v in state.items()) if state else ""


#: ``Span.kind`` fields: SpanKind INTERNAL..CONSUMER are 0..4 in the SDK, 1..5 on the wire.
_KINDS = {kind: b"\x30" + bytes((kind.value + 1,)) for kind in trace.SpanKind}
#: ``Span.flags`` fields of a span whose parent is local (or absent) and remote.
_LOCAL_FLAGS = b"\x85\x01" + _FIXED32(_FLAG_HAS_IS_REMOTE)
_REMOTE_FLAGS = b"\x85\x01" + _FIXED32(_FLAG_HAS_IS_REMOTE | _FLAG_IS_REMOTE)


def _name(name: str) -> bytes:
    """A span's name field (names repeat: one per route or queue), remembered."""
    found = _name_cache.kept.get(name)
    if found is None:
        found = _text(b"\x2a", name)
        _name_cache.offer(name, found)
    return found


def _encode_span(span: Any) -> bytes:
    """``Span``: trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5, kind 6,
    start 7, end 8, attributes 9, dropped attributes 10, events 11, dropped events 12,
    links 13, dropped links 14, status 15, flags 16."""
    ctx = span.get_span_context()
    parent = span.parent
    parts = [
        b"\x0a\x10"
        + ctx.trace_id.to_bytes(16, "big")
        + b"\x12\x08"
        + ctx.span_id.to_bytes(8, "big")
    ]
    if ctx.trace_state:
        parts.append(_text(b"\x1a", _trace_state(ctx.trace_state)))
    if parent is not None:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    parts.append(_name(span.name))
    parts.append(_KINDS[span.kind])
    if span.start_time:
        parts.append(b"\x39" + _FIXED64(span.start_time))
    if span.end_time:
        parts.append(b"\x41" + _FIXED64(span.end_time))
    attributes = span.attributes
    if attributes:
        parts.extend([_attribute(b"\x4a", k, v) for k, v in attributes.items()])
    if span.dropped_attributes:
        parts.append(b"\x50" + _varint(span.dropped_attributes))
    for event in span.events:
        body = b"\x09" + _FIXED64(event.timestamp) if event.timestamp else b""
        body += _text(b"\x12", event.name) + _attributes(b"\x1a", event.attributes)
        if event.dropped_attributes:
            body += b"\x20" + _varint(event.dropped_attributes)
        parts.append(_field(b"\x5a", body))
    if span.dropped_events:
        parts.append(b"\x60" + _varint(span.dropped_events))
    for link in span.links:
        linked = link.context
        body = b"\x0a\x10" + linked.trace_id.to_bytes(16, "big")
        body += b"\x12\x08" + linked.span_id.to_bytes(8, "big")
        body += _attributes(b"\x22", link.attributes)
        if link.dropped_attributes:
            body += b"\x28" + _varint(link.dropped_attributes)
        parts.append(_field(b"\x6a", body + b"\x35" + _flags(linked)))
    if span.dropped_links:
        parts.append(b"\x70" + _varint(span.dropped_links))
    status = span.status
    if status is not None:
        code = status.status_code
        if code is trace.StatusCode.UNSET and not status.description:
            parts.append(b"\x7a\x00")
        else:
            body = _text(b"\x12", status.description or "")
            if code.value:
                body += b"\x18" + _varint(code.value)
            parts.append(_field(b"\x7a", body))
    parts.append(_REMOTE_FLAGS if parent is not None and parent.is_remote else _LOCAL_FLAGS)
    return b"".join(parts)


def _once(obj: Any, encode: Callable[[Any], bytes]) -> bytes:
    """``encode(obj)`` for a resource or scope (a few per process), remembered."""
    found = _header_cache.get(id(obj))
    if found is not None and found[0] is obj:
        return found[1]
    encoded = encode(obj)
    if len(_header_cache) < 64:
        _header_cache[id(obj)] = (obj, encoded)
    return encoded


def _resource_field(resource: Any) -> bytes:
    """``ResourceSpans.resource``: ``Resource`` with its attributes (1)."""
    return _field(b"\x0a", _attributes(b"\x0a", resource.attributes))


def _scope_field(scope: Any) -> bytes:
    """``ScopeSpans.scope``: ``InstrumentationScope`` with name 1, version 2, attributes 3."""
    if scope is None:
        return b"\x0a\x00"
    body = _text(b"\x0a", scope.name) + _text(b"\x12", scope.version or "")
    return _field(b"\x0a", body + _attributes(b"\x1a", scope.attributes))


def encode_otlp_traces(spans: Sequence[Any]) -> bytes:
    """``ExportTraceServiceRequest`` bytes for finished SDK spans, as the OTLP exporter sends:
    resource_spans 1 → (resource 1, scope_spans 2 → (scope 1, spans 2, schema_url 3),
    schema_url 3)."""
    by_resource: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope
        scopes = by_resource.setdefault(id(resource), (resource, {}))[1]
        scopes.setdefault(id(scope), (scope, []))[1].append(_field(b"\x12", _encode_span(span)))
    out = []
    for resource, scopes in by_resource.values():
        body = _once(resource, _resource_field)
        for scope, encoded in scopes.values():
            tail = _text(b"\x1a", scope.schema_url or "") if scope is not None else b""
            body += _field(b"\x12", _once(scope, _scope_field) + b"".join(encoded) + tail)
        out.append(_field(b"\x0a", body + _text(b"\x1a", resource.schema_url or "")))
    return b"".join(out)


class _EncodedRequest:
    """What the exporter expects from its encoder: an object it serialises."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def SerializePartialToString(self) -> bytes:
        return self.data

    SerializeToString = SerializePartialToString


def use_fast_otlp_encoding() -> None:
    """Make the OTLP/HTTP span exporter encode with ``encode_otlp_traces``, falling back to
    its own encoder for a batch this one refuses."""
    from opentelemetry.exporter.otlp.proto.http import trace_exporter

    official = trace_exporter.encode_spans  # type: ignore[attr-defined]
    if getattr(official, "jobcore_fast", False):
        return

    def encode_spans(spans: Sequence[Any]) -> Any:
        try:
            return _EncodedRequest(encode_otlp_traces(spans))
        except Exception:
            return official(spans)

    encode_spans.jobcore_fast = True  # type: ignore[attr-defined]
    trace_exporter.encode_spans = encode_spans  # type: ignore[attr-defined,assignment]
