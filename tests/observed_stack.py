"""Real receivers and processes for the observability tests: an OTLP/HTTP trace receiver,
a private Redis, gunicorn and worker processes with their stdout kept in files."""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from conftest import ApiProcess, WorkerProcess, service_env, wait_until
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from jobcore_devstack.redis_server import RedisServer, free_port


def _value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the receiver decoded it; ids are lowercase hex, no parent = ``""``."""

    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    links: list[tuple[str, str]]
    status_code: int


@dataclass
class OtlpReceiver:
    """An OTLP/HTTP endpoint (``POST /v1/traces``, protobuf) in the test process."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    port: int = 0

    def start(self) -> OtlpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver._store(request)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _store(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            service=str(resource.get("service.name", "")),
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            links=[
                                (link.trace_id.hex(), link.span_id.hex()) for link in span.links
                            ],
                            status_code=span.status.code,
                        )
                    )

    def in_trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in list(self.spans) if s.trace_id == trace_id]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def private_env(redis: RedisServer, smtp_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    """Service environment on a Redis of the test's own (no other test's worker consumes it)."""
    env = service_env(redis.url, smtp_url, tmp, **extra)
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra)
    return env


def submit_http(base: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    reply = requests.post(base + "/jobs", json=body, headers=headers or None, timeout=5)
    assert reply.status_code in (200, 202), reply.text
    return dict(reply.json())


#: Test-only job types of the observability tests, beside conftest's.
JOB_MODULES = "job_plugins,observability_plugins"


class Stack:
    """A private Redis, `jobcore-api` (2 gunicorn workers), `jobcore-worker` (2 processes)."""

    def __init__(self, tmp: Path, smtp_url: str, **extra_env: str) -> None:
        self.tmp = tmp
        self.redis = RedisServer(tmp / "redis").start()
        self.worker_metrics_port = free_port()
        self.env = private_env(
            self.redis,
            smtp_url,
            tmp,
            JOBCORE_JOB_MODULES=JOB_MODULES,
            JOBCORE_WORKER_METRICS_PORT=str(self.worker_metrics_port),
            **extra_env,
        )
        self.api = ApiProcess(self.env, tmp / "api.log")
        self.worker = WorkerProcess(
            self.env, tmp / "worker.log", "--processes", "2", "--threads", "2"
        )

    def start(self) -> Stack:
        self.api.start()
        self.worker.start()
        return self

    @property
    def worker_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.worker_metrics_port}/metrics"

    def submit(self, body: dict[str, Any], **headers: str) -> str:
        return str(submit_http(self.api.url, body, **headers)["jobId"])

    def wait_for(self, job_id: str, *states: str, timeout: float = 30) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            record = requests.get(f"{self.api.url}/jobs/{job_id}", timeout=5).json()
            return dict(record) if record["state"] in states else None

        return wait_until(reached, timeout=timeout, message=f"job {job_id} {states}")  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.worker.stop()
        self.api.stop()
        self.redis.stop()
