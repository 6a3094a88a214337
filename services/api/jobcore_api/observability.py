"""The API's telemetry: server spans and request metrics, `/metrics` and `/workers`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from falcon.asgi import Request, Response
from opentelemetry import context, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from jobcore.async_jobs import AsyncJobs
from jobcore.errors import JobcoreError
from jobcore.outages import StoreOutage
from jobcore.presence import live
from jobcore.telemetry import metrics
from jobcore.telemetry.light_spans import start_span
from jobcore.telemetry.metric_tally import Tally
from jobcore.telemetry.tracing import W3C

#: Probes and scrapes: counted in the metrics, but no trace each (they would bury the jobs').
UNTRACED_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})
#: Route label of a request no route matched (the raw path would explode the label set).
UNMATCHED_ROUTE = "unmatched"
#: This API process's view of Redis, fed by readiness probes and scrapes: it logs an outage
#: once and sets ``jobcore_store_up{kind="api"}`` (``jobcore.outages``).
STORE_OUTAGE = StoreOutage("api")


class _RequestHeaders(Getter[Request]):
    """Reads propagation headers (``traceparent``, ``tracestate``, ``baggage``) through the
    request's own header lookup."""

    def get(self, req: Request, key: str) -> list[str] | None:
        value = req.get_header(key)
        return [value] if value is not None else None

    def keys(self, req: Request) -> list[str]:
        return list(req.headers)


_HEADERS = _RequestHeaders()
#: The context of a request that names no parent: its SERVER span starts a trace.
_NO_PARENT = context.Context()


class RequestTelemetry:
    """Falcon middleware: a SERVER span continuing the caller's W3C context, and metrics
    (counted in ``tally``, written to the metric files once a second and at shutdown)."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    async def process_shutdown(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        self.tally.flush()

    async def process_request(self, req: Request, resp: Response) -> None:
        req.context.telemetry_started = time.perf_counter()
        req.context.telemetry_span = None
        if req.path in UNTRACED_PATHS:
            return
        # W3C trace context only: the API reads no baggage, and a malformed one would log
        # a warning per request. Without a ``traceparent`` there is nothing to extract.
        parent = (
            W3C.extract(req, getter=_HEADERS)
            if req.get_header("traceparent") is not None
            else _NO_PARENT
        )
        span = start_span(
            req.method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": req.method,
                "url.path": req.path,
                "url.scheme": req.scheme,
            },
        )
        req.context.telemetry_span = span
        req.context.telemetry_token = context.attach(trace.set_span_in_context(span))

    async def process_response(
        self, req: Request, resp: Response, resource: Any, req_succeeded: bool
    ) -> None:
        started = req.context.get("telemetry_started")
        if started is None:
            return
        route = req.uri_template or UNMATCHED_ROUTE
        status = resp.status_code
        tally = self.tally
        tally.count(metrics.series(metrics.API_REQUESTS, route, req.method, str(status)))
        elapsed = time.perf_counter() - started
        tally.observe(metrics.series(metrics.API_REQUEST_DURATION, route, req.method), elapsed)
        span = req.context.get("telemetry_span")
        if span is None:
            return
        if req.uri_template:
            # Named once routed (a route's own middleware hook would cost a call per request).
            span.update_name(f"{req.method} {req.uri_template}")
            span.set_attribute("http.route", req.uri_template)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        context.detach(req.context.telemetry_token)


@dataclass
class StoreReading:
    """What one scrape read from Redis (``None`` when Redis did not answer)."""

    stats: dict[str, Any] | None = None
    processes: list[dict[str, Any]] = field(default_factory=list)


class StoreGauges(Collector):
    """Gauges of what the scrape read from Redis: jobs by state, queues, dead letters,
    workers. The scrape reads first (on the event loop) and then renders these."""

    def __init__(self) -> None:
        self.reading = StoreReading()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # ``jobcore_store_up{kind="api"}`` is whether Redis answered this scrape (a failed
        # readiness probe sets it too, through ``STORE_OUTAGE``); it is shown with the process
        # metrics, one family for every kind.
        up = metrics.STORE_UP.labels(kind="api")
        stats, processes = self.reading.stats, self.reading.processes
        if stats is None:
            up.set(0)
            return
        up.set(1)
        by_state = GaugeMetricFamily(
            "jobcore_jobs", "Jobs kept in Redis, by state.", labels=["state"]
        )
        for state, count in stats["states"].items():
            by_state.add_metric([state], count)
        yield by_state
        depth = GaugeMetricFamily(
            "jobcore_queue_depth", "Messages ready to run, by queue.", labels=["queue"]
        )
        for queue, count in stats["queues"].items():
            depth.add_metric([queue], count)
        yield depth
        yield GaugeMetricFamily(
            "jobcore_jobs_delayed", "Jobs waiting for their run time.", value=stats["delayed"]
        )
        yield GaugeMetricFamily(
            "jobcore_dead_letters", "Failed jobs (dead letters).", value=stats["deadLetters"]
        )
        live = GaugeMetricFamily(
            "jobcore_processes_live", "Live worker and scheduler processes.", labels=["kind"]
        )
        in_flight = 0
        kinds: dict[str, int] = {"worker": 0, "scheduler": 0}
        for process in processes:
            kind = process.get("kind", "worker")
            kinds[kind] = kinds.get(kind, 0) + 1
            in_flight += int(process.get("inFlight", 0) or 0)
        for kind, count in kinds.items():
            live.add_metric([kind], count)
        yield live
        yield GaugeMetricFamily(
            "jobcore_jobs_in_flight",
            "Jobs running now, as reported by live workers' heartbeats.",
            value=in_flight,
        )


class MetricsResource:
    """``GET /metrics``: the API processes' metrics, then the gauges read from Redis. This
    process writes its pending request counts first (``tally``); the other API processes
    write theirs within ``metric_tally.FLUSH_INTERVAL``."""

    def __init__(self, jobs: AsyncJobs, tally: Tally) -> None:
        self.jobs = jobs
        self.tally = tally
        self.process_registry = metrics.exposition_registry()
        self.gauges = StoreGauges()
        self.store_registry = CollectorRegistry(auto_describe=False)
        self.store_registry.register(self.gauges)
        # One scrape at a time renders what it read.
        self._rendering = asyncio.Lock()

    async def on_get(self, req: Request, resp: Response) -> None:
        resp.content_type = metrics.CONTENT_TYPE_LATEST
        reading = StoreReading()
        began = STORE_OUTAGE.began()
        try:
            reading.stats = await self.jobs.stats()
            reading.processes = await self.jobs.executor.run(live(self.jobs.settings))
        except JobcoreError as exc:
            reading.stats = None
            STORE_OUTAGE.failed(exc)
        else:
            STORE_OUTAGE.succeeded(began)
        self.tally.flush()
        async with self._rendering:
            self.gauges.reading = reading
            # The store first: rendering it sets ``jobcore_store_up``, a process metric.
            from_store = metrics.render(self.store_registry)
            resp.data = metrics.render(self.process_registry) + from_store


class WorkersResource:
    """``GET /workers``: live worker and scheduler processes, newest heartbeat first."""

    def __init__(self, jobs: AsyncJobs) -> None:
        self.jobs = jobs

    async def on_get(self, req: Request, resp: Response) -> None:
        resp.media = {"items": await self.jobs.executor.run(live(self.jobs.settings))}
