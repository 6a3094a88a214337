"""The project's docker-compose.yml, run by the container tier with a test override.

The override keeps every service as the project defines it and changes only what the test
machine needs: locally built images, the host's network (no bridge, no container
addresses), loopback ports of the test's choosing for Redis, the API, the worker metrics,
and ``REDIS_URL``, ``SMTP_URL`` and ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at what the
test runs. A second worker service (``worker-2``, a copy of ``worker``) gives two worker
containers their own metrics port and host name: on the host's network two replicas of one
service would share both, and ``jobcore health`` tells containers apart by host name.

Compose v1 cannot delete a key in an override, and it refuses published ports on the
host's network (which publishes nothing anyway), so the file it runs is the merge that
``docker-compose config`` prints, with ``ports`` dropped from host-network services.
"""

from __future__ import annotations

import copy
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from containers.engine import DockerEngine

PROJECT = "jobcoretest"
#: The services the tier starts: Redis, the API, two workers, the scheduler.
SERVICES = ("redis", "api", "worker", "worker-2", "scheduler")
#: The images built from the repository's Dockerfiles → the workspace package each installs.
IMAGE_PACKAGES = {
    "api": "jobcore-api",
    "worker": "jobcore-worker",
    "scheduler": "jobcore-scheduler",
}
#: The tier's Jobcore services → the image each runs.
IMAGE_OF_SERVICE = {
    "api": "api",
    "worker": "worker",
    "worker-2": "worker",
    "scheduler": "scheduler",
}
#: Variables that are not Jobcore settings but are read by what Jobcore runs on: the
#: OpenTelemetry SDK, the C library's clock (periodiq ticks in local time), the interpreter.
STANDARD_VARIABLES = frozenset(
    {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "TZ", "PATH", "PYTHONUNBUFFERED"}
)
#: Host name of each Jobcore container (every replica of a service shares it).
HOSTNAMES = {
    "api": "jobcore-api",
    "worker": "jobcore-worker-1",
    "worker-2": "jobcore-worker-2",
    "scheduler": "jobcore-scheduler",
}
#: Seconds a docker-compose command may take (``stop`` waits out grace periods).
COMPOSE_TIMEOUT = 180.0


@dataclass(frozen=True)
class StackPorts:
    """Loopback ports: what the containers listen on and what the test listens on."""

    redis: int
    api: int
    worker_metrics: tuple[int, int]
    otlp: int
    smtp: int

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis}/0"


@dataclass(frozen=True)
class HostProcess:
    """A process of a container, as the host sees it."""

    pid: int
    ppid: int
    uid: int
    euid: int
    command: str


def compose_override(
    project_compose: dict[str, Any], images: dict[str, str], ports: StackPorts
) -> dict[str, Any]:
    """The override of the project's compose file for ``images`` (service → tag) and ``ports``."""
    services = project_compose["services"]
    redis = services["redis"]
    loopback = {
        "REDIS_URL": ports.redis_url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{ports.otlp}",
    }
    override: dict[str, Any] = {
        "redis": {
            "image": images["redis"],
            "network_mode": "host",
            "command": [*redis["command"], "--port", str(ports.redis), "--bind", "127.0.0.1"],
            # The project's check, asking the port Redis listens on here.
            "healthcheck": redis["healthcheck"]
            | {"test": ["CMD-SHELL", f"redis-cli -p {ports.redis} ping | grep -q PONG"]},
        },
        "api": {
            "environment": loopback
            | {"JOBCORE_API_HOST": "127.0.0.1", "JOBCORE_API_PORT": str(ports.api)},
        },
        "worker": {
            "environment": loopback
            | {
                "SMTP_URL": f"smtp://127.0.0.1:{ports.smtp}",
                "JOBCORE_WORKER_METRICS_PORT": str(ports.worker_metrics[0]),
                "JOBCORE_WORKER_METRICS_HOST": "127.0.0.1",
            },
        },
        "scheduler": {"environment": loopback},
    }
    second = copy.deepcopy(services["worker"])
    second.pop("build")
    second["environment"] |= override["worker"]["environment"] | {
        "JOBCORE_WORKER_METRICS_PORT": str(ports.worker_metrics[1])
    }
    override["worker-2"] = second
    for name, image_of in IMAGE_OF_SERVICE.items():
        override[name] |= {
            "image": images[image_of],
            "network_mode": "host",
            "hostname": HOSTNAMES[name],
        }
    # Services this test does not start still belong to the project: their default network
    # is the host's, so Compose creates no bridge network for them.
    return {"services": override, "networks": {"default": {"name": "host", "external": True}}}


class ComposeStack:
    """``docker-compose`` of one engine, on the project's file merged with the override."""

    def __init__(
        self,
        engine: DockerEngine,
        compose: str,
        project_file: Path,
        images: dict[str, str],
        ports: StackPorts,
        workdir: Path,
    ) -> None:
        self.engine, self.compose_bin, self.ports = engine, compose, ports
        self.project_file = project_file
        override = compose_override(yaml.safe_load(project_file.read_text()), images, ports)
        self.override_file = workdir / "docker-compose.test.yml"
        self.override_file.write_text(yaml.safe_dump(override, sort_keys=False))
        self.file = workdir / "docker-compose.merged.yml"

    def merge(self) -> dict[str, Any]:
        """Write the file ``docker-compose`` runs: the project's and the override, merged."""
        merged = yaml.safe_load(
            self._run("-f", str(self.project_file), "-f", str(self.override_file), "config").stdout
        )
        for service in merged["services"].values():
            if service.get("network_mode") == "host":
                service.pop("ports", None)
        self.file.write_text(yaml.safe_dump(merged, sort_keys=False))
        return dict(merged)

    def compose(self, *args: str, timeout: float = COMPOSE_TIMEOUT) -> str:
        return self._run("-f", str(self.file), *args, timeout=timeout).stdout

    def _run(
        self, *args: str, timeout: float = COMPOSE_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.compose_bin, "--project-name", PROJECT, "--ansi", "never", *args],
            cwd=self.project_file.parent,
            env=self.engine.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"docker-compose {' '.join(args)}: {done.returncode}\n{done.stderr}")
        return done

    def up(self) -> None:
        self.merge()
        self.compose("up", "--detach", "--no-deps", "--no-build", *SERVICES)

    def containers(self, service: str) -> list[str]:
        """Ids of the service's containers, running or not."""
        return self.compose("ps", "--all", "-q", service).split()

    def container(self, service: str) -> str:
        (only,) = self.containers(service)
        return only

    def all_containers(self) -> dict[str, str]:
        """Container id → its service, for every started service."""
        return {c: service for service in SERVICES for c in self.containers(service)}

    def state(self, container: str) -> dict[str, Any]:
        return dict(self.engine.inspect(container)[0]["State"])

    def health(self, container: str) -> str:
        return str(self.state(container).get("Health", {}).get("Status", "none"))

    def wait_healthy(self, containers: list[str], timeout: float) -> float:
        """Seconds until every container's health check reports healthy."""
        started = time.monotonic()
        while True:
            states = {c: self.state(c) for c in containers}
            stopped = [c for c, s in states.items() if s["Status"] != "running"]
            if stopped and not any(s["Restarting"] for s in states.values()):
                raise AssertionError(f"containers stopped: {self.describe(stopped)}")
            if all(s.get("Health", {}).get("Status") == "healthy" for s in states.values()):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"not healthy after {timeout} s: {self.describe(containers)}")
            time.sleep(1)

    def describe(self, containers: list[str]) -> str:
        """Each container's state, last health check output and log tail, for a failure."""
        parts = []
        for container in containers:
            state = self.state(container)
            checks = state.get("Health", {}).get("Log", [])
            last_check = checks[-1]["Output"].strip() if checks else "-"
            logs = self.engine.docker("logs", "--tail", "20", container, check=False)
            parts.append(
                f"\n--- {container[:12]} {state['Status']} exit={state['ExitCode']} "
                f"health={state.get('Health', {}).get('Status')} last check: {last_check}\n"
                f"{logs.stdout}{logs.stderr}"
            )
        return "".join(parts)

    def processes(self, container: str) -> list[HostProcess]:
        """The container's processes with their host pids and real and effective uids."""
        table = self.engine.docker("top", container, "-eo", "pid,ppid,ruid,euid,args").stdout
        processes = []
        for line in table.splitlines()[1:]:
            pid, ppid, ruid, euid, command = line.split(None, 4)
            processes.append(HostProcess(int(pid), int(ppid), int(ruid), int(euid), command))
        return processes

    def exec(self, container: str, *command: str) -> subprocess.CompletedProcess[str]:
        return self.engine.docker("exec", container, *command, check=False)

    def container_env(self, container: str) -> dict[str, str]:
        return _env_dict(self.engine.inspect(container)[0]["Config"]["Env"])

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "10")


def _env_dict(pairs: list[str] | None) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs or [])


def image_size_mb(engine: DockerEngine, image: str) -> float:
    return float(engine.inspect(image, kind="image")[0]["Size"]) / 1e6


def image_healthcheck(engine: DockerEngine, image: str) -> list[str]:
    """The image's HEALTHCHECK command in exec form (``CMD`` dropped)."""
    test = engine.inspect(image, kind="image")[0]["Config"]["Healthcheck"]["Test"]
    kind, *command = test
    return command if kind == "CMD" else ["/bin/sh", "-c", *command]
