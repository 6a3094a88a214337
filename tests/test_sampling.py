"""Jobcore's sampler decides as ``ParentBased`` with the same root would, for every parent."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ParentBased
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, TraceState

from jobcore.telemetry.sampling import DropUnparentedClientSpans, FollowParent

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
STATE = TraceState([("vendor", "value")])


def _parent(*, remote: bool, sampled: bool) -> trace.Span:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    context = SpanContext(TRACE_ID, 0xB7AD6B7169203331, remote, flags, STATE)
    return trace.NonRecordingSpan(context)


PARENTS = {
    "none": None,
    "invalid": trace.INVALID_SPAN,
    "remote sampled": _parent(remote=True, sampled=True),
    "remote not sampled": _parent(remote=True, sampled=False),
    "local sampled": _parent(remote=False, sampled=True),
    "local not sampled": _parent(remote=False, sampled=False),
}


@pytest.mark.parametrize("parent", PARENTS.values(), ids=PARENTS.keys())
@pytest.mark.parametrize("kind", [SpanKind.SERVER, SpanKind.PRODUCER, SpanKind.CLIENT])
@pytest.mark.parametrize("ratio", [1.0, 0.0])
def test_it_decides_as_parent_based_would(parent, kind, ratio):
    context = trace.set_span_in_context(parent) if parent is not None else None
    attributes = {"messaging.system": "dramatiq"}
    mine = FollowParent(DropUnparentedClientSpans(ratio))
    theirs = ParentBased(DropUnparentedClientSpans(ratio))
    got = mine.should_sample(context, TRACE_ID, "span", kind, attributes)
    want = theirs.should_sample(context, TRACE_ID, "span", kind, attributes)
    assert got.decision == want.decision
    assert dict(got.attributes or {}) == dict(want.attributes or {})
    assert got.trace_state == want.trace_state
