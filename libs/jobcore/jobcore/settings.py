"""One settings object, read once from the environment. Every variable is listed here."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
from pathlib import Path
from urllib.parse import urlsplit

from jobcore.errors import ConfigurationError

#: Redis used when ``REDIS_URL`` is unset and ``make run`` has written no URL to ``var/``.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: ``Settings.redis_url_source`` when neither ``REDIS_URL`` nor ``var/redis.url`` named Redis.
DEFAULT_SOURCE = "default"
#: URL schemes redis-py connects with.
REDIS_URL_SCHEMES = ("redis", "rediss", "unix")
#: File, under the var directory, where ``make run`` writes its embedded Redis URL.
REDIS_URL_FILE = "redis.url"
#: Payload fields whose values never reach a log line: the ones that hold email addresses.
DEFAULT_LOG_REDACT = "email,to,cc,bcc,from,replyTo"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str) -> float:
    """Seconds in ``"250ms"``, ``"30s"``, ``"5m"``, ``"24h"``, ``"7d"`` or bare seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (examples: 30s, 5m, 24h, 7d)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{text!r} is not a boolean (use true or false)")


@dataclass(frozen=True)
class Settings:
    """Jobcore's configuration. Field ``x_y`` is read from ``ENV[x_y]`` as declared in ``ENV``."""

    redis_url: str = DEFAULT_REDIS_URL
    redis_timeout: float = 0.5
    var_dir: str = "var"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = 2
    api_threads: int = 4
    api_reuse_port: bool = True
    max_body_bytes: int = 1024 * 1024
    worker_processes: int = 2
    worker_threads: int = 8
    worker_queues: str = ""
    worker_shutdown_timeout: float = 25.0
    job_modules: str = ""
    trace_redis: bool = False
    smtp_url: str = "smtp://127.0.0.1:1025"
    smtp_from: str = "jobcore@localhost"
    smtp_timeout: float = 10.0
    output_dir: str = "output"
    retention: float = 7 * 86400
    failed_retention: float = 30 * 86400
    idempotency_window: float = 86400
    require_idempotency_key: bool = False
    broker_heartbeat_timeout: float = 10.0
    broker_maintenance_chance: int = 100_000
    owner_ttl: float = 15.0
    heartbeat_interval: float = 2.0
    sweep_interval: float = 5.0
    sweep_margin: float = 15.0
    log_level: str = "INFO"
    log_redact: str = DEFAULT_LOG_REDACT
    worker_metrics_port: int = 9191
    #: ``name:role:secret`` entries, comma-separated; empty = API keys off. Never shown.
    api_keys: str = dataclass_field(default="", repr=False)
    max_json_depth: int = 32
    max_payload_keys: int = 1000
    max_idempotency_key_length: int = 255
    max_list_limit: int = 500
    max_delay: float = 7 * 86400 - 3600
    max_attempts_limit: int = 100
    max_backoff: float = 86400
    max_queue_depth: int = 100_000
    queue_depth_cache: float = 1.0
    #: Where ``redis_url`` came from: the variable, the file ``make run`` wrote, or
    #: ``"default"`` (neither was there).
    redis_url_source: str = DEFAULT_SOURCE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every variable of ``ENV``; a bad value raises ``ConfigurationError`` naming it."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in fields(cls):
            name = ENV.get(field.name)
            if name is None or name not in env:
                continue  # not read from the environment, or not set
            raw = env[name]
            try:
                values[field.name] = _convert(field.name, raw)
            except ValueError as exc:
                raise ConfigurationError(f"{name}: {exc}") from exc
        if "redis_url" in values:
            values["redis_url_source"] = ENV["redis_url"]
        else:
            var_dir = str(values.get("var_dir", cls.var_dir))
            embedded = read_embedded_redis_url(var_dir)
            if embedded:
                values["redis_url"] = embedded
                values["redis_url_source"] = str(Path(var_dir) / REDIS_URL_FILE)
        settings = cls(**values)  # type: ignore[arg-type]
        problem = redis_url_problem(settings.redis_url)
        if problem:
            raise ConfigurationError(f"{settings.redis_url_source}: {problem}")
        shortest = min(settings.retention, settings.failed_retention)
        if shortest < settings.idempotency_window:
            # A replayed key must find its job: records outlive the keys that name them.
            raise ConfigurationError(
                f"{ENV['retention']} and {ENV['failed_retention']} must be at least "
                f"{ENV['idempotency_window']} ({settings.idempotency_window:g} s)"
            )
        return settings

    @property
    def redacted_fields(self) -> frozenset[str]:
        return frozenset(f.strip() for f in self.log_redact.split(",") if f.strip())

    @property
    def queues(self) -> tuple[str, ...]:
        return tuple(q.strip() for q in self.worker_queues.split(",") if q.strip())


#: The environment variable behind each setting.
ENV: dict[str, str] = {
    "redis_url": "REDIS_URL",
    "redis_timeout": "JOBCORE_REDIS_TIMEOUT",
    "var_dir": "JOBCORE_VAR_DIR",
    "api_host": "JOBCORE_API_HOST",
    "api_port": "JOBCORE_API_PORT",
    "api_workers": "JOBCORE_API_WORKERS",
    "api_threads": "JOBCORE_API_THREADS",
    "max_body_bytes": "JOBCORE_MAX_BODY_BYTES",
    "worker_processes": "JOBCORE_WORKER_PROCESSES",
    "worker_threads": "JOBCORE_WORKER_THREADS",
    "worker_queues": "JOBCORE_WORKER_QUEUES",
    "worker_shutdown_timeout": "JOBCORE_WORKER_SHUTDOWN_TIMEOUT",
    "job_modules": "JOBCORE_JOB_MODULES",
    "trace_redis": "JOBCORE_TRACE_REDIS",
    "smtp_url": "SMTP_URL",
    "smtp_from": "SMTP_FROM",
    "smtp_timeout": "SMTP_TIMEOUT",
    "output_dir": "JOBCORE_OUTPUT_DIR",
    "retention": "JOBCORE_RETENTION",
    "failed_retention": "JOBCORE_FAILED_RETENTION",
    "idempotency_window": "JOBCORE_IDEMPOTENCY_WINDOW",
    "require_idempotency_key": "JOBCORE_REQUIRE_IDEMPOTENCY_KEY",
    "api_reuse_port": "JOBCORE_API_REUSE_PORT",
    "broker_heartbeat_timeout": "JOBCORE_BROKER_HEARTBEAT_TIMEOUT",
    "broker_maintenance_chance": "JOBCORE_BROKER_MAINTENANCE_CHANCE",
    "owner_ttl": "JOBCORE_OWNER_TTL",
    "heartbeat_interval": "JOBCORE_HEARTBEAT_INTERVAL",
    "sweep_interval": "JOBCORE_SWEEP_INTERVAL",
    "sweep_margin": "JOBCORE_SWEEP_MARGIN",
    "log_level": "JOBCORE_LOG_LEVEL",
    "log_redact": "JOBCORE_LOG_REDACT",
    "worker_metrics_port": "JOBCORE_WORKER_METRICS_PORT",
    "api_keys": "JOBCORE_API_KEYS",
    "max_json_depth": "JOBCORE_MAX_JSON_DEPTH",
    "max_payload_keys": "JOBCORE_MAX_PAYLOAD_KEYS",
    "max_idempotency_key_length": "JOBCORE_MAX_IDEMPOTENCY_KEY_LENGTH",
    "max_list_limit": "JOBCORE_MAX_LIST_LIMIT",
    "max_delay": "JOBCORE_MAX_DELAY",
    "max_attempts_limit": "JOBCORE_MAX_ATTEMPTS_LIMIT",
    "max_backoff": "JOBCORE_MAX_BACKOFF",
    "max_queue_depth": "JOBCORE_MAX_QUEUE_DEPTH",
    "queue_depth_cache": "JOBCORE_QUEUE_DEPTH_CACHE",
}

_DURATIONS = {
    "redis_timeout",
    "worker_shutdown_timeout",
    "smtp_timeout",
    "retention",
    "failed_retention",
    "idempotency_window",
    "broker_heartbeat_timeout",
    "owner_ttl",
    "heartbeat_interval",
    "sweep_interval",
    "sweep_margin",
    "max_delay",
    "max_backoff",
    "queue_depth_cache",
}
_INTEGERS = {
    "api_port",
    "api_workers",
    "api_threads",
    "max_body_bytes",
    "worker_processes",
    "worker_threads",
    "broker_maintenance_chance",
    "worker_metrics_port",
    "max_json_depth",
    "max_payload_keys",
    "max_idempotency_key_length",
    "max_list_limit",
    "max_attempts_limit",
    "max_queue_depth",
}


def _convert(name: str, raw: str) -> object:
    if name in _DURATIONS:
        return parse_duration(raw)
    if name in _INTEGERS:
        value = int(raw)
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if name in ("require_idempotency_key", "api_reuse_port", "trace_redis"):
        return parse_bool(raw)
    return raw


def redis_url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL, or ``None``: checked at start, so a typo is one clear
    line instead of a traceback from the first call."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{url!r} is not a Redis URL ({exc})"
    if parts.scheme not in REDIS_URL_SCHEMES:
        schemes = ", ".join(f"{s}://" for s in REDIS_URL_SCHEMES)
        return f"{url!r} is not a Redis URL: it must start with one of {schemes}"
    if parts.scheme == "unix":
        return None if parts.path else f"{url!r} names no socket path"
    if not parts.hostname:
        return f"{url!r} names no host"
    if port == 0:
        return f"{url!r}: the port must be 1-65535"
    db = parts.path.strip("/")
    if db and not db.isdigit():
        return f"{url!r}: the database after the host must be a number, not {db!r}"
    return None


def read_embedded_redis_url(var_dir: str) -> str | None:
    """The URL ``make run`` wrote for its embedded Redis, if any."""
    path = Path(var_dir) / REDIS_URL_FILE
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
