"""The API's telemetry: server spans and request metrics, `/metrics` and `/workers`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import falcon
from opentelemetry import context, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from jobcore.errors import JobcoreError
from jobcore.presence import live_processes
from jobcore.runtime import Runtime
from jobcore.store.connection import store_errors
from jobcore.telemetry import metrics
from jobcore.telemetry.tracing import tracer

#: Probes and scrapes: counted in the metrics, but no trace each (they would bury the jobs').
UNTRACED_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})
#: Route label of a request no route matched (the raw path would explode the label set).
UNMATCHED_ROUTE = "unmatched"


class _WsgiHeaders(Getter[dict[str, Any]]):
    """Reads propagation headers straight from the WSGI environ (``HTTP_TRACEPARENT``), so
    extracting a context does not build Falcon's lowercase copy of every header."""

    def get(self, environ: dict[str, Any], key: str) -> list[str] | None:
        value = environ.get("HTTP_" + key.upper().replace("-", "_"))
        return [value] if value is not None else None

    def keys(self, environ: dict[str, Any]) -> list[str]:
        return [k[5:].lower().replace("_", "-") for k in environ if k.startswith("HTTP_")]


_HEADERS = _WsgiHeaders()


class _RequestMetrics:
    """The request counter and histogram children by label values, looked up once each
    (``labels()`` takes a lock and builds its key on every call)."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[tuple[str, str], Any] = {}

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        counter = self._counters.get((route, method, status))
        if counter is None:
            counter = metrics.API_REQUESTS.labels(route=route, method=method, status=str(status))
            self._counters[(route, method, status)] = counter
        counter.inc()
        duration = self._durations.get((route, method))
        if duration is None:
            duration = metrics.API_REQUEST_DURATION.labels(route=route, method=method)
            self._durations[(route, method)] = duration
        duration.observe(seconds)


class RequestTelemetry:
    """Falcon middleware: a SERVER span continuing the caller's W3C context, and metrics."""

    def __init__(self) -> None:
        self._metrics = _RequestMetrics()

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.telemetry_started = time.perf_counter()
        req.context.telemetry_span = None
        if req.path in UNTRACED_PATHS:
            return
        # Straight from the WSGI environ, without Falcon's copy of every header.
        parent = propagate.extract(req.env, getter=_HEADERS)
        span = tracer().start_span(
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

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        started = req.context.get("telemetry_started")
        if started is None:
            return
        route = req.uri_template or UNMATCHED_ROUTE
        status = resp.status_code
        self._metrics.record(route, req.method, status, time.perf_counter() - started)
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


class StoreGauges(Collector):
    """Gauges read from Redis once per scrape: jobs by state, queues, dead letters, workers."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # The API's ``jobcore_store_up{kind="api"}`` is whether Redis answered this scrape;
        # it is set here and shown with the process metrics (one family for every kind).
        up = metrics.STORE_UP.labels(kind="api")
        try:
            stats = self.runtime.jobs.stats()
            with store_errors():
                processes = live_processes(self.runtime)
        except JobcoreError:
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
    """``GET /metrics``: the API processes' metrics, then the gauges read from Redis."""

    def __init__(self, runtime: Runtime) -> None:
        self.process_registry = metrics.exposition_registry()
        self.store_registry = CollectorRegistry(auto_describe=False)
        self.store_registry.register(StoreGauges(runtime))

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = metrics.CONTENT_TYPE_LATEST
        # The store first: reading it sets ``jobcore_store_up``, a process metric.
        from_store = metrics.render(self.store_registry)
        resp.data = metrics.render(self.process_registry) + from_store


class WorkersResource:
    """``GET /workers``: live worker and scheduler processes, newest heartbeat first."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"items": live_processes(self.runtime)}
