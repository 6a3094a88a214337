"""Which spans are kept: Redis command spans only inside a request or job span, and other
root spans by the head-sampling ratio (``OTEL_TRACES_SAMPLER_ARG``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.util.types import Attributes


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


class FollowParent(ParentBased):
    """``ParentBased`` with its default delegates, deciding in one step: a span whose parent
    (remote or local) is sampled is sampled, one whose parent is not is dropped, and
    ``root`` decides for a span without a parent. (Every request and every job starts spans
    with a parent; ``ParentBased`` looks its parent up twice and calls a delegate for it.)"""

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
        parent = get_current_span(parent_context).get_span_context()
        if parent is None or not parent.is_valid:
            return self._root.should_sample(parent_context, trace_id, name, kind, attributes, links)
        if parent.trace_flags.sampled:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state)
        return SamplingResult(Decision.DROP, None, parent.trace_state)

    def get_description(self) -> str:
        return f"FollowParent{{root:{self._root.get_description()}}}"
