"""Names the attempt's outcome on its CONSUMER span: an ``AttemptListener`` of
``JobLifecycle`` (the span is current while the lifecycle runs). The job's type and attempt
are named when the span starts (``telemetry.message_tracing``)."""

from __future__ import annotations

from opentelemetry import trace

from jobcore.execution.context import JobContext
from jobcore.model.states import AttemptOutcome


class JobSpanDetails:
    def attempt_started(self, job: JobContext) -> None:
        pass

    def attempt_ended(
        self, job: JobContext, outcome: AttemptOutcome, exception: BaseException | None
    ) -> None:
        trace.get_current_span().set_attribute("jobcore.outcome", str(outcome))
