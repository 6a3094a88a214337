"""The Grafana dashboard's PromQL runs for real: Prometheus scrapes a running API and worker."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import ROOT, require_tool, wait_until
from observed_stack import Stack

from jobcore_devstack.redis_server import free_port

DASHBOARD = ROOT / "observability" / "grafana" / "dashboards" / "jobcore.json"
SCRAPE_CONFIG = ROOT / "observability" / "prometheus.yml"
#: What Grafana would put in place of its variables, for a 1 s scrape interval.
GRAFANA_VARIABLES = {
    "__rate_interval": "15s",
    "__interval": "5s",
    "__range": "5m",
    "type": ".*",
}


def _tool(name: str) -> str:
    return require_tool(name, "apt-get install --no-install-recommends prometheus")


def dashboard_expressions() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every Prometheus target of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        if (panel.get("datasource") or {}).get("type") != "prometheus":
            continue
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    return found


def substitute(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return GRAFANA_VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


class Prometheus:
    def __init__(self, binary: str, tmp: Path, targets: dict[str, str]) -> None:
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": job, "metrics_path": "/metrics", "static_configs": [{"targets": [t]}]}
                for job, t in targets.items()
            ],
        }
        (tmp / "prometheus.yml").write_text(json.dumps(config))
        self.log = (tmp / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(self._ready, timeout=30, message="prometheus ready")

    def _ready(self) -> bool:
        assert self.process.poll() is None, "prometheus exited"
        try:
            return requests.get(self.url + "/-/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        reply = requests.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10)
        body = reply.json()
        assert body["status"] == "success", (expr, body)
        return list(body["data"]["result"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory, smtp_sink: Any) -> Iterator[Prometheus]:
    binary = _tool("prometheus")
    tmp = tmp_path_factory.mktemp("dashboard")
    stack = Stack(tmp, smtp_sink.url).start()
    prometheus = Prometheus(
        binary,
        tmp,
        {
            "jobcore-api": stack.api.url.removeprefix("http://"),
            "jobcore-worker": f"127.0.0.1:{stack.worker_metrics_port}",
        },
    )
    try:
        fast = {"type": "fixed", "delayMs": 100}
        ids = [
            stack.submit({"type": "dummy", "payload": {}}),
            stack.submit({"type": "dummy", "payload": {"failTimes": 1}, "backoff": fast}),
            stack.submit({"type": "dummy", "payload": {"alwaysFail": True}, "maxAttempts": 1}),
            stack.submit({"type": "dummy", "payload": {}, "delaySeconds": 3600}),
        ]
        stack.wait_for(ids[0], "completed")
        stack.wait_for(ids[1], "completed")
        stack.wait_for(ids[2], "failed")
        requests.get(stack.api.url + "/jobs/no-such-job", timeout=5)  # an API error
        for job in ("jobcore-api", "jobcore-worker"):
            wait_until(
                lambda job=job: prometheus.query(
                    f'count_over_time(up{{job="{job}"}}[1m]) >= 3 and up{{job="{job}"}} == 1'
                ),
                timeout=30,
                message=f"three scrapes of {job}",
            )
        # Three more scrapes after the jobs finished, so every counter moved in the window.
        wait_until(
            lambda: prometheus.query(
                'count_over_time(jobcore_jobs_succeeded_total{type="dummy"}[1m]) >= 3'
            ),
            timeout=30,
            message="three scrapes after the jobs",
        )
        yield prometheus
    finally:
        prometheus.stop()
        stack.stop()


def test_the_shipped_scrape_config_is_valid():
    promtool = _tool("promtool")
    result = subprocess.run(
        [promtool, "check", "config", str(SCRAPE_CONFIG)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_covers_the_job_lifecycle():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "Jobcore — job lifecycle"
    text = json.dumps(dashboard)
    for metric in (
        "jobcore_jobs_submitted_total",
        "jobcore_jobs_succeeded_total",
        "jobcore_jobs_in_flight",
        "jobcore_queue_depth",
        "jobcore_jobs_retried_total",
        "jobcore_jobs_failed_total",
        "jobcore_dead_letters",
        "jobcore_job_duration_seconds_bucket",
        "jobcore_api_request_duration_seconds_bucket",
        "jobcore_api_requests_total",
        "jobcore_processes_live",
    ):
        assert metric in text, metric
    assert "${jaeger_url}/trace/${trace_id}" in text


@pytest.mark.parametrize(("title", "expr"), dashboard_expressions())
def test_every_dashboard_query_returns_a_series(scraped, title, expr):
    result = scraped.query(substitute(expr))
    assert result, f"{title}: {substitute(expr)} returned no series"
