"""The container tier (``make test-containers``): the images built from the Dockerfiles and
the stack started from docker-compose.yml, on a private Docker engine.

The engine, the stand-in base images, the three Jobcore images and the stack are built
once for the module; the tests run in the order written, the last two disturb the stack on
purpose (a worker container killed, then ``docker-compose stop``). Every port is a loopback
port of the host's network; Redis runs in its own container, the OTLP receiver and the SMTP
sink in the test process. At the end every container stops, what was built is removed, the
engine stops and nothing it mounted is left.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from conftest import ROOT, require_tool, wait_until
from containers.compose_stack import (
    HOSTNAMES,
    IMAGE_OF_SERVICE,
    IMAGE_PACKAGES,
    STANDARD_VARIABLES,
    ComposeStack,
    StackPorts,
    image_healthcheck,
    image_size_mb,
)
from containers.engine import DockerEngine, can_keep_data_in_memory
from containers.mounts import mount_points_under
from containers.standin_images import BaseImages, build_base_images, default_cache_dir
from observed_stack import OtlpReceiver
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from jobcore.runtime import Runtime, build_runtime
from jobcore.settings import ENV, Settings
from jobcore.store import queries
from jobcore_devstack.redis_server import free_port
from jobcore_devstack.smtp_sink import SmtpSink

pytestmark = pytest.mark.containers

COMPOSE_FILE = ROOT / "docker-compose.yml"
APT_HINT = "apt-get install docker.io docker-compose debootstrap"
#: Seconds one image may take to build (a cold build here takes about a minute).
BUILD_TIMEOUT = 600
#: Seconds for every container to report healthy: the worker and scheduler images check
#: every 30 s, and the first check comes one interval after the start.
HEALTHY_TIMEOUT = 150
#: README, Guarantees: a SIGKILLed worker's job runs again within 30 s (shipped defaults).
RECOVERY_BOUND = 30.0
#: The user every Jobcore image runs as.
JOBCORE_UID = 10001
#: Seed 000's and seed 004's request bodies.
SEED_WELCOME_EMAIL = {
    "type": "welcome-email",
    "payload": {
        "email": "Albert@example.com",
        "name": "Albert",
        "message": "Congratulations! Your background job system is live.",
    },
}
SEED_CSV_GENERATION = {"type": "csv-generation", "payload": {"name": "Alice", "score": 95}}


#: Module fixtures whose setup failed, with the error. pytest runs a failed module fixture's
#: setup again for every later test; these take minutes, so later tests fail at once.
FAILED_SETUPS: dict[str, str] = {}


@contextmanager
def setup_once(name: str) -> Iterator[None]:
    if name in FAILED_SETUPS:
        pytest.fail(f"{name} failed in an earlier test: {FAILED_SETUPS[name]}", pytrace=False)
    try:
        yield
    except Exception as exc:
        FAILED_SETUPS[name] = f"{type(exc).__name__}: {str(exc)[:500]}"
        raise


def say(request: pytest.FixtureRequest, text: str) -> None:
    """A line on the terminal, captured output or not (sizes and timings are the report)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"[containers] {text}")


def engine_client(dockerd: str) -> str:
    """The docker client installed beside the engine: another one on PATH may speak a newer
    API or need plugins (buildx) this engine lacks."""
    engine_dir = Path(dockerd).resolve().parent
    for directory in (engine_dir, engine_dir.parent / "bin"):
        if (directory / "docker").exists():
            return str(directory / "docker")
    return require_tool("docker", APT_HINT)


def require_root() -> None:
    if os.geteuid() != 0:
        message = "a Docker engine of its own needs root"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


# --- fixtures: engine, images, receivers, stack ------------------------------------------


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> Iterator[DockerEngine]:
    dockerd = require_tool("dockerd", APT_HINT)
    require_tool("debootstrap", APT_HINT)
    require_tool("docker-compose", APT_HINT)
    require_root()
    started = time.monotonic()
    with setup_once("engine"):
        engine = DockerEngine(
            dockerd, engine_client(dockerd), data_in_memory=can_keep_data_in_memory()
        ).start()
    where = "in memory" if engine.data_in_memory else "on disk"
    say(request, f"engine up in {time.monotonic() - started:.1f} s ({engine.root}, data {where})")
    try:
        yield engine
    finally:
        engine.stop()
        assert not engine.root.exists(), f"{engine.root} left behind"
        assert not mount_points_under(engine.root), "the engine left mounts"
        say(request, "engine stopped, its mounts and files removed")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("containers")


@pytest.fixture(scope="module")
def base_images(request: pytest.FixtureRequest, engine: DockerEngine, workdir: Path) -> BaseImages:
    uv_dir = ROOT / ".tools" / "bin"
    if not (uv_dir / "uv").exists():
        pytest.fail("the pinned uv is missing: run make install")
    started = time.monotonic()
    with setup_once("base images"):
        bases = build_base_images(engine, uv_dir, default_cache_dir(), workdir)
    say(request, f"stand-in base images in {time.monotonic() - started:.1f} s: {bases}")
    return bases


def build_image(engine: DockerEngine, service: str, bases: BaseImages, logs: Path) -> str:
    """Build a Jobcore service's image as compose would (its build context and Dockerfile),
    on the host's network, from the stand-in bases."""
    build = yaml.safe_load(COMPOSE_FILE.read_text())["services"][service]["build"]
    tag = f"jobcore-{service}:containers-test"
    done = engine.docker(
        "build",
        "--network=host",
        f"--file={ROOT / build['context'] / build['dockerfile']}",
        f"--tag={tag}",
        *(f"--build-arg={name}={value}" for name, value in bases.build_args().items()),
        str(ROOT / build["context"]),
        check=False,
        timeout=BUILD_TIMEOUT,
    )
    (logs / f"build-{service}.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, f"{service} image:\n{(done.stdout + done.stderr)[-4000:]}"
    return tag


@pytest.fixture(scope="module")
def images(
    request: pytest.FixtureRequest, engine: DockerEngine, base_images: BaseImages, workdir: Path
) -> Iterator[dict[str, str]]:
    """Image service (and ``redis``) → tag; every image removed afterwards."""
    started = time.monotonic()
    with setup_once("images"), ThreadPoolExecutor(max_workers=len(IMAGE_PACKAGES)) as pool:
        tags = dict(
            zip(
                IMAGE_PACKAGES,
                pool.map(
                    lambda service: build_image(engine, service, base_images, workdir),
                    IMAGE_PACKAGES,
                ),
                strict=True,
            )
        )
    say(request, f"images built in {time.monotonic() - started:.1f} s")
    try:
        yield tags | {"redis": base_images.redis}
    finally:
        engine.docker("rmi", "--force", *tags.values(), check=False)
        engine.docker("image", "prune", "--all", "--force", check=False)
        engine.docker("builder", "prune", "--all", "--force", check=False)
        left = engine.docker("images", "--all", "--quiet", check=False).stdout.split()
        say(request, f"built images removed ({len(left)} image(s) left before engine stop)")


@pytest.fixture(scope="module")
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


@dataclass
class RunningStack:
    compose: ComposeStack
    engine: DockerEngine
    images: dict[str, str]
    ports: StackPorts
    healthy_after: float

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    def submit(self, body: dict[str, Any]) -> str:
        reply = requests.post(f"{self.api}/jobs", json=body, timeout=10)
        assert reply.status_code == 202, reply.text
        return str(reply.json()["jobId"])

    def record(self, job_id: str) -> dict[str, Any]:
        return dict(requests.get(f"{self.api}/jobs/{job_id}", timeout=10).json())

    def events(self, job_id: str) -> list[dict[str, Any]]:
        return list(requests.get(f"{self.api}/jobs/{job_id}/events", timeout=10).json()["items"])

    def wait_for(self, job_id: str, *states: str, timeout: float = 60) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            record = self.record(job_id)
            return record if record["state"] in states else None

        return wait_until(reached, timeout=timeout, interval=0.2, message=f"{job_id} {states}")  # type: ignore[no-any-return]

    def starts(self, job_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events(job_id) if e["event"] == "started"]


def service_of_worker(worker_id: str) -> str:
    """The compose service whose container runs the worker process ``worker_id``
    (``<host name>-<pid>-<suffix>``)."""
    host = worker_id.rsplit("-", 2)[0]
    (service,) = [s for s, name in HOSTNAMES.items() if name == host]
    return service


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest,
    engine: DockerEngine,
    images: dict[str, str],
    otlp_receiver: OtlpReceiver,
    smtp_sink: SmtpSink,
    workdir: Path,
) -> Iterator[RunningStack]:
    ports = StackPorts(
        redis=free_port(),
        api=free_port(),
        worker_metrics=(free_port(), free_port()),
        otlp=otlp_receiver.port,
        smtp=smtp_sink.port,
    )
    compose = ComposeStack(
        engine, require_tool("docker-compose", APT_HINT), COMPOSE_FILE, images, ports, workdir
    )
    try:
        with setup_once("stack"):
            compose.up()
            healthy_after = compose.wait_healthy(list(compose.all_containers()), HEALTHY_TIMEOUT)
        say(request, f"every container healthy {healthy_after:.1f} s after docker-compose up")
        yield RunningStack(compose, engine, images, ports, healthy_after)
    finally:
        if compose.file.exists():  # else nothing was started (the merge failed)
            compose.down()
            say(request, "containers and volumes removed (docker-compose down --volumes)")


# --- the images -------------------------------------------------------------------------


def test_images_build_and_their_sizes_are_printed(
    request: pytest.FixtureRequest, engine: DockerEngine, images: dict[str, str]
) -> None:
    sizes = {service: image_size_mb(engine, tag) for service, tag in images.items()}
    say(request, "image sizes: " + ", ".join(f"{s} {mb:.0f} MB" for s, mb in sizes.items()))
    for service in IMAGE_PACKAGES:
        assert sizes[service] > 0


#: Run inside an image: its distributions, which Jobcore service packages import, and the
#: files of the virtualenv and the working directory that look like worker or job code.
CONTENTS_PROBE = """
import importlib.metadata as m, importlib.util as u, json, os
services = ("jobcore_api", "jobcore_worker", "jobcore_scheduler", "jobcore_devstack")
job_code = [
    os.path.join(top, name)
    for root in ("/opt/venv", "/app")
    for top, dirs, files in os.walk(root)
    for name in dirs + files
    if "jobcore_worker" in name or os.path.join(top, name).endswith("/jobs")
]
print(json.dumps({
    "distributions": sorted(d.metadata["Name"].lower() for d in m.distributions()),
    "modules": [name for name in services if u.find_spec(name)],
    "job_code": job_code,
}))
"""


@pytest.fixture(scope="module")
def image_contents(engine: DockerEngine, images: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Image service → what ``CONTENTS_PROBE`` found in it (one container each, at once)."""

    def probe(service: str) -> dict[str, Any]:
        found = engine.docker(
            "run", "--rm", "--network=host", images[service], "python", "-c", CONTENTS_PROBE
        )
        return dict(json.loads(found.stdout))

    with ThreadPoolExecutor(max_workers=len(IMAGE_PACKAGES)) as pool:
        return dict(zip(IMAGE_PACKAGES, pool.map(probe, IMAGE_PACKAGES), strict=True))


@pytest.mark.parametrize("service", sorted(IMAGE_PACKAGES))
def test_each_image_holds_only_its_own_service(
    image_contents: dict[str, dict[str, Any]], service: str
) -> None:
    found = image_contents[service]
    own = IMAGE_PACKAGES[service]
    assert own in found["distributions"]
    others = {"jobcore-api", "jobcore-worker", "jobcore-scheduler", "jobcore-devstack"} - {own}
    assert not others & set(found["distributions"]), found["distributions"]
    assert found["modules"] == [own.replace("-", "_")], found["modules"]


def test_the_api_image_holds_no_worker_or_job_code(
    image_contents: dict[str, dict[str, Any]],
) -> None:
    found = image_contents["api"]
    assert "jobcore-worker" not in found["distributions"]
    assert "jobcore_worker" not in found["modules"]
    assert found["job_code"] == []
    # The probe does find job code where there is some.
    assert image_contents["worker"]["job_code"]


# --- the stack --------------------------------------------------------------------------


def test_every_container_becomes_healthy(stack: RunningStack) -> None:
    containers = stack.compose.all_containers()
    assert sorted(set(containers.values())) == sorted(
        ["api", "redis", "scheduler", "worker", "worker-2"]
    )
    for container, service in containers.items():
        assert stack.compose.health(container) == "healthy", service
    assert stack.healthy_after < HEALTHY_TIMEOUT


def test_every_jobcore_container_runs_as_uid_10001(stack: RunningStack) -> None:
    for container, service in stack.compose.all_containers().items():
        if service == "redis":
            continue
        processes = stack.compose.processes(container)
        assert len(processes) >= 2, service  # docker-init and the service
        for process in processes:
            assert (process.uid, process.euid) == (JOBCORE_UID, JOBCORE_UID), (service, process)


def test_compose_passes_only_variables_the_settings_know(stack: RunningStack) -> None:
    merged = yaml.safe_load(stack.compose.file.read_text())["services"]
    known = set(ENV.values()) | STANDARD_VARIABLES
    for container, service in stack.compose.all_containers().items():
        if service == "redis":
            continue
        passed = merged[service]["environment"]
        assert set(passed) <= known, f"{service}: {sorted(set(passed) - known)}"
        env = stack.compose.container_env(container)
        assert all(env[name] == str(value) for name, value in passed.items()), service
        # The settings read it all without complaint, inside the container.
        loads = stack.compose.exec(
            container, "python", "-c", "from jobcore.settings import Settings; Settings.from_env()"
        )
        assert loads.returncode == 0, f"{service}: {loads.stderr}"


def test_each_container_runs_an_entry_point_of_its_own_image(stack: RunningStack) -> None:
    list_scripts = (
        "import importlib.metadata as m, json; print(json.dumps({e.name: e.dist.name"
        " for e in m.entry_points(group='console_scripts') if e.dist}))"
    )
    for container, service in stack.compose.all_containers().items():
        if service == "redis":
            continue
        package = IMAGE_PACKAGES[IMAGE_OF_SERVICE[service]]
        scripts = json.loads(stack.compose.exec(container, "python", "-c", list_scripts).stdout)
        command = stack.engine.inspect(container)[0]["Config"]["Cmd"]
        assert scripts.get(command[0]) == package, f"{service}: {command} is not {package}'s"
        # ... and it is what runs under docker-init.
        processes = stack.compose.processes(container)
        init = stack.compose.state(container)["Pid"]
        (main,) = [p for p in processes if p.ppid == init]
        assert main.command.split()[1] == f"/opt/venv/bin/{command[0]}", main


@pytest.fixture(scope="module")
def lone_health_checks(stack: RunningStack) -> dict[str, subprocess.CompletedProcess[str]]:
    """Image service → its HEALTHCHECK run in a container of the image with nothing else
    running (a host name no process has, the stack's Redis, a port nothing listens on)."""

    def run(service: str) -> subprocess.CompletedProcess[str]:
        image = stack.images[service]
        return stack.engine.docker(
            "run",
            "--rm",
            "--network=host",
            "--hostname=jobcore-probe",
            f"--env=REDIS_URL={stack.ports.redis_url}",
            f"--env=JOBCORE_API_PORT={free_port()}",
            image,
            *image_healthcheck(stack.engine, image),
            check=False,
        )

    with ThreadPoolExecutor(max_workers=len(IMAGE_PACKAGES)) as pool:
        return dict(zip(IMAGE_PACKAGES, pool.map(run, IMAGE_PACKAGES), strict=True))


@pytest.mark.parametrize("service", sorted(IMAGE_PACKAGES))
def test_each_image_health_check_passes_with_its_service_and_fails_without(
    stack: RunningStack,
    lone_health_checks: dict[str, subprocess.CompletedProcess[str]],
    service: str,
) -> None:
    check = image_healthcheck(stack.engine, stack.images[service])
    container = stack.compose.containers(service)[0]
    assert stack.compose.exec(container, *check).returncode == 0
    # Without its service the check runs and says unhealthy (1), neither "not found" (127)
    # nor "cannot execute" (126).
    alone = lone_health_checks[service]
    assert alone.returncode == 1, alone.stdout + alone.stderr


def test_each_worker_container_serves_metrics_on_its_own_port(stack: RunningStack) -> None:
    for port in stack.ports.worker_metrics:
        reply = wait_until(
            lambda port=port: _get(f"http://127.0.0.1:{port}/metrics"),
            timeout=30,
            message=f"worker metrics on {port}",
        )
        assert "jobcore_" in reply.text


def _get(url: str) -> requests.Response | None:
    try:
        reply = requests.get(url, timeout=3)
    except requests.RequestException:
        return None
    return reply if reply.ok else None


# --- the work ---------------------------------------------------------------------------


def test_the_welcome_email_reaches_the_smtp_sink(stack: RunningStack, smtp_sink: SmtpSink) -> None:
    job_id = stack.submit(SEED_WELCOME_EMAIL)
    record = stack.wait_for(job_id, "completed", "failed")
    assert record["state"] == "completed", record
    mails = [m for m in smtp_sink.messages if m.job_id == job_id]
    assert len(mails) == 1
    assert mails[0].recipients == ["Albert@example.com"]
    assert mails[0].message["Message-ID"] == record["result"]["messageId"]


def test_the_csv_file_is_inside_the_worker_container_that_wrote_it(stack: RunningStack) -> None:
    job_id = stack.submit(SEED_CSV_GENERATION)
    record = stack.wait_for(job_id, "completed", "failed")
    assert record["state"] == "completed", record
    (start,) = stack.starts(job_id)
    container = stack.compose.container(service_of_worker(start["worker"]))
    written = stack.compose.exec(container, "cat", record["result"])
    assert written.returncode == 0, written.stderr
    assert written.stdout == "key,value\nname,Alice\nscore,95\n"


def test_a_jobs_spans_reach_the_otlp_receiver(
    stack: RunningStack, otlp_receiver: OtlpReceiver
) -> None:
    job_id = stack.submit(SEED_WELCOME_EMAIL | {"idempotencyKey": "containers-trace"})
    trace_id = stack.wait_for(job_id, "completed")["traceId"]

    def whole_trace() -> bool:
        kinds = {(s.service, s.kind) for s in otlp_receiver.in_trace(trace_id)}
        return {
            ("jobcore-api", Span.SPAN_KIND_SERVER),
            ("jobcore-api", Span.SPAN_KIND_PRODUCER),
            ("jobcore-worker", Span.SPAN_KIND_CONSUMER),
        } <= kinds

    wait_until(whole_trace, timeout=30, interval=0.5, message="the job's spans")
    spans = otlp_receiver.in_trace(trace_id)
    (producer,) = [s for s in spans if s.kind == Span.SPAN_KIND_PRODUCER]
    (consumer,) = [s for s in spans if s.kind == Span.SPAN_KIND_CONSUMER]
    assert (producer.name, consumer.name) == ("send email", "process email")
    assert consumer.parent_span_id == producer.span_id
    assert consumer.attributes["messaging.message.id"] == job_id


# --- faults -----------------------------------------------------------------------------


def test_a_sigkilled_worker_containers_job_completes_on_the_other_within_the_bound(
    request: pytest.FixtureRequest, stack: RunningStack
) -> None:
    """The container's main process is ``jobcore-worker`` (docker-init's child): killing it
    ends the container, the restart policy brings the container back at once. The revived
    container is paused until the job is recovered, so the job shows it does not need it."""
    job_id = stack.submit({"type": "dummy", "payload": {"sleepSeconds": 10}})
    wait_until(lambda: stack.starts(job_id), timeout=30, message=f"{job_id} started")
    victim = service_of_worker(stack.starts(job_id)[0]["worker"])
    (survivor,) = {"worker", "worker-2"} - {victim}
    container = stack.compose.container(victim)
    before = stack.compose.state(container)
    restarts = stack.engine.inspect(container)[0]["RestartCount"]
    (main,) = [p for p in stack.compose.processes(container) if p.ppid == before["Pid"]]
    assert "jobcore-worker" in main.command

    killed_at = time.time()
    os.kill(main.pid, signal.SIGKILL)

    def restarted() -> bool:
        state = stack.compose.state(container)
        # Until Docker sees the exit the old pid stays; while it waits to restart the
        # container, it is Running and Restarting with pid 0.
        return bool(
            state["Running"] and not state["Restarting"] and state["Pid"] not in (0, before["Pid"])
        )

    wait_until(restarted, timeout=30, interval=0.05, message=f"{victim} restarted")
    stack.engine.docker("pause", container)
    try:
        record = stack.wait_for(job_id, "completed", "failed", timeout=RECOVERY_BOUND + 30)
    finally:
        stack.engine.docker("unpause", container)
    assert record["state"] == "completed", record
    _, again = stack.starts(job_id)
    ran_again_after = rfc3339_seconds(again["at"]) - killed_at
    say(request, f"{victim} killed: its job ran again on {survivor} after {ran_again_after:.1f} s")
    assert service_of_worker(again["worker"]) == survivor
    assert ran_again_after < RECOVERY_BOUND
    # The same container, back under its restart policy, healthy again.
    assert stack.engine.inspect(container)[0]["RestartCount"] == restarts + 1
    stack.compose.wait_healthy([container], HEALTHY_TIMEOUT)


def rfc3339_seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_compose_stop_requeues_the_in_flight_report_and_leaves_nothing_active(
    request: pytest.FixtureRequest, stack: RunningStack
) -> None:
    job_id = stack.submit({"type": "report", "payload": {"durationSeconds": 120, "steps": 120}})
    stack.wait_for(job_id, "active", timeout=30)
    merged = yaml.safe_load(stack.compose.file.read_text())["services"]
    grace = _duration(merged["worker"]["stop_grace_period"])
    containers = stack.compose.all_containers()

    started, stop_sent = time.monotonic(), time.time()
    stack.compose.compose("stop")
    took = time.monotonic() - started
    states = {container: stack.compose.state(container) for container in containers}
    stopped_after = {
        f"{containers[c]}:{c[:6]}": round(rfc3339_seconds(s["FinishedAt"]) - stop_sent, 1)
        for c, s in states.items()
    }
    say(request, f"docker-compose stop took {took:.1f} s (grace {grace:.0f} s): {stopped_after}")
    assert took < grace, stack.compose.describe(list(containers))
    for container, state in states.items():
        assert not state["Running"], containers[container]
        assert state["ExitCode"] == 0, stack.compose.describe([container])

    stack.compose.compose("start", "redis")
    runtime = _runtime(stack.ports.redis_url)
    wait_until(lambda: runtime.executor.run(queries.ping()), timeout=30, message="Redis back")
    record = runtime.store.get(job_id)
    assert record.state in ("waiting", "completed"), record.state
    if record.state == "waiting":
        assert runtime.store.events(job_id)[-1]["event"] == "requeued"
    assert runtime.store.owned_ids(100) == []


def _runtime(redis_url: str) -> Runtime:
    return build_runtime(Settings.from_env({"REDIS_URL": redis_url}))


def _duration(value: str) -> float:
    """Compose's ``60s``, ``1m30s`` as seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value)
    assert parts, value
    return sum(float(number) * units[unit] for number, unit in parts)
