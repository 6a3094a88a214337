"""``AsyncJobs``: ``Jobs`` for code on an event loop (the API). The same ``JobOperations``,
awaited on the asynchronous executor, so nothing waits on Redis while holding the loop."""

from __future__ import annotations

from typing import Any

from jobcore.intake.idempotency import CLIENT_NAMESPACE
from jobcore.intake.listing import DEFAULT_PAGE_SIZE
from jobcore.intake.submission import Submission
from jobcore.jobs import BULK_LIMIT, Accepted, BulkRetry, JobOperations, Submitting
from jobcore.model.records import JobRecord
from jobcore.store import queries
from jobcore.store.async_executor import AsyncExecutor
from jobcore.store.queries import Page


class AsyncJobs:
    def __init__(self, operations: JobOperations, executor: AsyncExecutor) -> None:
        self.operations = operations
        self.executor = executor
        self.settings = operations.settings
        self.job_types = operations.job_types

    async def submit(
        self,
        submission: Submission,
        *,
        namespace: str = CLIENT_NAMESPACE,
        trace_id: str = "",
        traceparent: str = "",
    ) -> Accepted:
        """``record_and_send`` inside the job's PRODUCER span, as ``Jobs.submit``."""
        with Submitting(
            self.operations,
            submission,
            namespace=namespace,
            trace_id=trace_id,
            traceparent=traceparent,
        ) as block:
            return block.accepted(await self.executor.run(block.operation))

    async def get(self, job_id: str) -> JobRecord:
        return await self.executor.run(self.operations.get(job_id))

    async def events(self, job_id: str) -> list[dict[str, Any]]:
        return await self.executor.run(self.operations.events(job_id))

    async def list(
        self,
        *,
        state: str | None = None,
        job_type: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: int | None = None,
    ) -> Page:
        return await self.executor.run(
            self.operations.list(state=state, job_type=job_type, limit=limit, cursor=cursor)
        )

    async def stats(self) -> dict[str, Any]:
        return await self.executor.run(self.operations.stats())

    async def cancel(self, job_id: str) -> JobRecord:
        return await self.executor.run(self.operations.cancel(job_id))

    async def retry(self, job_id: str, *, reset_effects: bool = False) -> JobRecord:
        return await self.executor.run(self.operations.retry(job_id, reset_effects=reset_effects))

    async def retry_dead(
        self,
        *,
        job_type: str | None = None,
        reset_effects: bool = False,
        include_permanent: bool = False,
        limit: int = BULK_LIMIT,
    ) -> BulkRetry:
        return await self.executor.run(
            self.operations.retry_dead(
                job_type=job_type,
                reset_effects=reset_effects,
                include_permanent=include_permanent,
                limit=limit,
            )
        )

    async def purge_dead(self, *, job_type: str | None = None, limit: int = BULK_LIMIT) -> int:
        return await self.executor.run(self.operations.purge_dead(job_type=job_type, limit=limit))

    async def ping(self) -> bool:
        return await self.executor.run(queries.ping())
