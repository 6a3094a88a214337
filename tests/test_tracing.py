"""One OpenTelemetry trace per job, from the HTTP request to the last retry, received over OTLP."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from conftest import WorkerProcess, wait_until
from observed_stack import ApiProcess, OtlpReceiver, ReceivedSpan, private_env, submit_http
from opentelemetry import trace
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from jobcore.telemetry.tracing import W3C, span_context_of
from jobcore_devstack.redis_server import RedisServer
from jobcore_devstack.smtp_sink import SmtpSink

SERVER, PRODUCER, CONSUMER, CLIENT = (
    Span.SPAN_KIND_SERVER,
    Span.SPAN_KIND_PRODUCER,
    Span.SPAN_KIND_CONSUMER,
    Span.SPAN_KIND_CLIENT,
)


class TracedStack:
    def __init__(self, receiver: OtlpReceiver, api: ApiProcess, worker: WorkerProcess) -> None:
        self.receiver, self.api, self.worker = receiver, api, worker


@contextmanager
def traced_stack(
    tmp: Path, smtp_url: str, worker_args: tuple[str, ...], **env: str
) -> Iterator[TracedStack]:
    """An OTLP receiver, a private Redis, the API and a worker exporting to the receiver
    every 100 ms; all stopped after the block."""
    receiver = OtlpReceiver().start()
    redis = RedisServer(tmp / "redis").start()
    service_env = private_env(
        redis,
        smtp_url,
        tmp,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        JOBCORE_WORKER_METRICS_PORT="0",
        **env,
    )
    api = ApiProcess(service_env, tmp / "api.log").start()
    worker = WorkerProcess(service_env, tmp / "worker.log", *worker_args).start()
    try:
        yield TracedStack(receiver, api, worker)
    finally:
        worker.stop()
        api.stop()
        redis.stop()
        receiver.stop()


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory, smtp_sink: SmtpSink) -> Iterator[TracedStack]:
    tmp = tmp_path_factory.mktemp("traced")
    workers = ("--processes", "2", "--threads", "2")
    with traced_stack(tmp, smtp_sink.url, workers, JOBCORE_TRACE_REDIS="true") as stack:
        yield stack


def _job_spans(stack: TracedStack, trace_id: str, consumers: int) -> list[ReceivedSpan]:
    def complete() -> list[ReceivedSpan] | None:
        spans = stack.receiver.in_trace(trace_id)
        done = [s for s in spans if s.kind == CONSUMER]
        return spans if len(done) >= consumers and any(s.kind == SERVER for s in spans) else None

    return wait_until(complete, timeout=30, message="the job's spans")  # type: ignore[no-any-return]


def _record(stack: TracedStack, job_id: str, state: str) -> dict[str, object]:
    def reached() -> dict[str, object] | None:
        record = requests.get(f"{stack.api.url}/jobs/{job_id}", timeout=5).json()
        return record if record["state"] == state else None

    return wait_until(reached, timeout=30, message=f"job {job_id} {state}")  # type: ignore[no-any-return]


def test_a_job_failing_once_then_succeeding_is_one_trace_from_request_to_last_attempt(traced):
    caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    body = {
        "type": "dummy",
        "payload": {"failTimes": 1},
        "maxAttempts": 3,
        "backoff": {"type": "fixed", "delayMs": 200},
    }
    job_id = submit_http(traced.api.url, body, traceparent=f"00-{caller_trace}-{caller_span}-01")[
        "jobId"
    ]
    record = _record(traced, job_id, "completed")
    assert record["traceId"] == caller_trace

    spans = _job_spans(traced, caller_trace, consumers=2)
    [server] = [s for s in spans if s.kind == SERVER]
    [producer] = [s for s in spans if s.kind == PRODUCER]
    first, second = sorted(
        (s for s in spans if s.kind == CONSUMER), key=lambda s: s.attributes["jobcore.attempt"]
    )

    assert server.name == "POST /jobs" and server.service == "jobcore-api"
    assert server.parent_span_id == caller_span
    assert producer.name == "send default" and producer.parent_span_id == server.span_id
    for consumer in (first, second):
        assert consumer.name == "process default" and consumer.service == "jobcore-worker"
        assert consumer.parent_span_id == producer.span_id
        assert consumer.attributes["messaging.message.id"] == job_id
        assert consumer.attributes["messaging.system"] == "dramatiq"
        assert consumer.attributes["messaging.operation.type"] == "process"
        assert consumer.attributes["messaging.destination.name"] == "default"
        assert consumer.attributes["jobcore.job.type"] == "dummy"
    assert producer.attributes["messaging.operation.type"] == "send"
    assert producer.attributes["messaging.message.id"] == job_id
    assert producer.attributes["messaging.destination.name"] == "default"
    assert (first.attributes["jobcore.attempt"], second.attributes["jobcore.attempt"]) == (1, 2)
    assert first.status_code == Status.STATUS_CODE_ERROR
    assert second.status_code != Status.STATUS_CODE_ERROR
    assert first.links == []
    assert second.links == [(caller_trace, first.span_id)]


def test_redis_calls_are_traced_only_inside_a_request_or_job_span(traced):
    job_id = submit_http(traced.api.url, {"type": "dummy", "payload": {}})["jobId"]
    trace_id = str(_record(traced, job_id, "completed")["traceId"])
    spans = _job_spans(traced, trace_id, consumers=1)
    by_id = {s.span_id: s for s in spans}
    redis_spans = [s for s in spans if s.kind == CLIENT]
    assert redis_spans, "the job's Redis calls are traced"
    assert all(s.parent_span_id in by_id for s in redis_spans)
    # Heartbeats, sweeps and broker polling run outside any span: none reaches the receiver.
    assert not [s for s in traced.receiver.spans if s.kind == CLIENT and not s.parent_span_id]


def test_a_job_submitted_without_a_caller_context_starts_its_own_trace(traced):
    job_id = submit_http(traced.api.url, {"type": "dummy", "payload": {}})["jobId"]
    trace_id = str(_record(traced, job_id, "completed")["traceId"])
    assert len(trace_id) == 32 and int(trace_id, 16) != 0
    spans = _job_spans(traced, trace_id, consumers=1)
    [server] = [s for s in spans if s.kind == SERVER]
    assert server.parent_span_id == ""


def test_logs_of_a_traced_job_name_its_trace(traced):
    job_id = submit_http(traced.api.url, {"type": "dummy", "payload": {}})["jobId"]
    trace_id = str(_record(traced, job_id, "completed")["traceId"])
    log: Path = traced.worker.log_path
    wait_until(lambda: f'"trace_id": "{trace_id}"' in log.read_text(), message="traced log line")


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0x_7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        "garbage",
    ],
)
def test_a_traceparent_is_read_as_the_w3c_propagator_reads_it(traceparent):
    expected = trace.get_current_span(W3C.extract({"traceparent": traceparent}))
    wanted = expected.get_span_context()
    found = span_context_of(traceparent)
    if not wanted.is_valid:
        assert found is None
    else:
        assert found == wanted


def test_with_the_sdk_disabled_jobs_are_accepted_and_run_untraced(tmp_path, smtp_sink):
    """``OTEL_SDK_DISABLED=true`` turns tracing off: the API and the workers go on, no spans."""
    with traced_stack(
        tmp_path, smtp_sink.url, ("--processes", "1"), OTEL_SDK_DISABLED="true"
    ) as stack:
        accepted = submit_http(stack.api.url, {"type": "dummy", "payload": {"failTimes": 1}})
        record = _record(stack, accepted["jobId"], "completed")
        assert record["attempts"] == 2
        time.sleep(0.5)  # export runs every 100 ms: none would have been held back
        assert stack.receiver.spans == []
    for log in ("api.log", "worker.log"):
        assert "AttributeError" not in (tmp_path / log).read_text()  # the job's own failure only
