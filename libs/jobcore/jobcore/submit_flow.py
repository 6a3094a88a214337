"""The one way a request becomes a job, for the API and the command line alike: parse and
check the body (``intake.submission``), refuse new work for a queue that is too deep
(``intake.admission``), submit (``Jobs.submit``, or ``AsyncJobs.submit`` on an event loop).
Refusals are ``JobcoreError``s, which each front end renders in its one place (HTTP
problems, CLI error lines)."""

from __future__ import annotations

from typing import Any

from jobcore.async_jobs import AsyncJobs
from jobcore.clock import now_ms
from jobcore.intake.admission import QueueAdmission
from jobcore.intake.idempotency import CLIENT_NAMESPACE
from jobcore.intake.limits import RequestLimits
from jobcore.intake.submission import Submission, SubmissionParser
from jobcore.jobs import Accepted
from jobcore.runtime import Runtime
from jobcore.settings import Settings
from jobcore.store.calls import Operation


class SubmitFlow:
    """Parse, check, admit and submit one request body."""

    def __init__(
        self, runtime: Runtime, parser: SubmissionParser, admission: QueueAdmission | None
    ) -> None:
        self.runtime = runtime
        self.parser = parser
        self.admission = admission

    @classmethod
    def for_runtime(cls, runtime: Runtime, settings: Settings | None = None) -> SubmitFlow:
        """The flow with the settings' limits, key rule and backpressure (the runtime's
        settings unless others are given)."""
        settings = settings or runtime.settings
        parser = SubmissionParser(
            runtime.job_types,
            require_idempotency_key=settings.require_idempotency_key,
            limits=RequestLimits.from_settings(settings),
        )
        return cls(runtime, parser, QueueAdmission.from_settings(settings))

    def admitted(self, body: Any, header_key: str | None) -> Operation[Submission]:
        """The body parsed and checked, and its queue admitted (a depth read at most)."""
        submission = self.parser.parse(body, header_key, now_ms=now_ms())
        if self.admission is not None:
            yield from self.admission.check(submission.spec.queue)
        return submission

    def submit(
        self, body: Any, *, header_key: str | None = None, namespace: str = CLIENT_NAMESPACE
    ) -> Accepted:
        submission = self.runtime.executor.run(self.admitted(body, header_key))
        return self.runtime.jobs.submit(submission, namespace=namespace)

    async def submit_on_loop(
        self,
        jobs: AsyncJobs,
        body: Any,
        *,
        header_key: str | None = None,
        namespace: str = CLIENT_NAMESPACE,
    ) -> Accepted:
        """``submit`` on an event loop: the same checks, Redis awaited through ``jobs``."""
        submission = await jobs.executor.run(self.admitted(body, header_key))
        return await jobs.submit(submission, namespace=namespace)
