"""One settings object, read once from the environment, every setting declared once.

Each field of ``Settings`` is declared with ``setting(...)``: its environment variable,
default, kind (how it is parsed and shown), bounds and one line of doc. The settings object,
``ENV``, the request limits (``intake.limits``), ``.env.example`` (``env_example()``) and the
README's configuration table (``readme_table()``) all come from these declarations;
``python -m jobcore.settings`` prints both files' text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from dataclasses import field as dataclass_field
from enum import StrEnum
from pathlib import Path
from typing import Any

from jobcore.errors import ConfigurationError
from jobcore.redis_url import DIRECT_OPTIONS, TLS_OPTIONS, redis_url_problem

#: Redis used when ``REDIS_URL`` is unset and ``make run`` has written no URL to ``var/``.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: ``Settings.redis_url_source`` when neither ``REDIS_URL`` nor ``var/redis.url`` named Redis.
DEFAULT_SOURCE = "default"
#: File, under the var directory, where ``make run`` writes its embedded Redis URL.
REDIS_URL_FILE = "redis.url"
#: Payload fields whose values never reach a log line: the ones that hold email addresses.
DEFAULT_LOG_REDACT = "email,to,cc,bcc,from,replyTo"
#: Dramatiq's Redis broker refuses delays of 7 days or more; one hour of slack below that.
DRAMATIQ_MAX_DELAY_SECONDS = 7 * 86400 - 3600

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def _quoted(names: tuple[str, ...]) -> str:
    """Names as the configuration table shows them: ```a`, `b```."""
    return ", ".join(f"`{name}`" for name in names)


def parse_duration(text: str) -> float:
    """Seconds in ``"250ms"``, ``"30s"``, ``"5m"``, ``"24h"``, ``"7d"`` or bare seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (examples: 30s, 5m, 24h, 7d)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(seconds: float) -> str:
    """The shortest spelling ``parse_duration`` reads back: ``7d``, ``24h``, ``0.5s``."""
    for unit in ("d", "h", "m", "s"):
        count = seconds / _UNIT_SECONDS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    if seconds * 1000 == int(seconds * 1000):
        return f"{int(seconds * 1000)}ms" if seconds < 1 else f"{seconds:g}s"
    return f"{seconds:g}s"


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{text!r} is not a boolean (use true or false)")


def _parse_integer(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


class Kind(StrEnum):
    """How a setting's text is read and shown."""

    TEXT = "text"
    INTEGER = "integer"
    DURATION = "duration"
    BOOLEAN = "boolean"


_PARSERS = {
    Kind.TEXT: lambda text: text,
    Kind.INTEGER: _parse_integer,
    Kind.DURATION: parse_duration,
    Kind.BOOLEAN: parse_bool,
}


@dataclass(frozen=True)
class Declaration:
    """What one setting is: its variable, kind, bounds and doc (``setting``)."""

    env: str
    kind: Kind
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    #: Its value is never shown (not in ``repr``, not in an example).
    secret: bool = False
    #: Set in ``.env.example`` (the others are listed there commented out).
    example: bool = False
    #: The default as the README says it, when the value alone would mislead.
    shown_default: str | None = None

    def parse(self, text: str) -> Any:
        value = _PARSERS[self.kind](text)
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {self._show(self.minimum)}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be at most {self._show(self.maximum)}")
        return value

    def show(self, value: Any) -> str:
        """A value as the variable would be written."""
        return self._show(value)

    def _show(self, value: Any) -> str:
        if self.kind is Kind.DURATION:
            return format_duration(float(value))
        if self.kind is Kind.BOOLEAN:
            return "true" if value else "false"
        return str(value)


def setting(
    default: Any,
    env: str,
    doc: str,
    *,
    kind: Kind = Kind.TEXT,
    minimum: float | None = None,
    maximum: float | None = None,
    secret: bool = False,
    example: bool = False,
    shown_default: str | None = None,
) -> Any:
    """A ``Settings`` field with its declaration (kept in the field's metadata)."""
    declaration = Declaration(env, kind, doc, minimum, maximum, secret, example, shown_default)
    return dataclass_field(default=default, repr=not secret, metadata={"setting": declaration})


_D, _I, _B = Kind.DURATION, Kind.INTEGER, Kind.BOOLEAN


@dataclass(frozen=True)
class Settings:
    """Jobcore's configuration: every field is read from its declared variable."""

    # --- Redis ---------------------------------------------------------------------------
    redis_url: str = setting(
        DEFAULT_REDIS_URL,
        "REDIS_URL",
        "Redis for records and the broker (`rediss://` for TLS, `unix://` for a socket, "
        "`redis+sentinel://[:password@]host:port,host:port/service_name[/db]` for a primary "
        "found through Sentinel, see Running at scale); options after `?`: "
        f"{_quoted(DIRECT_OPTIONS)}, and with `rediss://` {_quoted(TLS_OPTIONS)} (timeouts "
        "are `JOBCORE_REDIS_TIMEOUT`'s); a malformed URL, or an unknown option, stops a "
        "process at start with one line saying why",
        shown_default="`var/redis.url` of `make run`, else `redis://127.0.0.1:6379/0` (the "
        "`jobcore` command line refuses to guess: it needs one of the first two)",
    )
    redis_timeout: float = setting(
        0.5,
        "JOBCORE_REDIS_TIMEOUT",
        "socket and connect timeout of every Redis call",
        kind=_D,
        minimum=0.001,
    )
    min_replicas_ack: int = setting(
        0,
        "JOBCORE_MIN_REPLICAS_ACK",
        "replicas that must confirm a write Jobcore relies on (a new job before its `202`, a "
        "side-effect reservation before the effect, a job's end) before it counts (`WAIT`); "
        "0 for a single Redis, 1 with Sentinel so a failover loses no accepted job",
        kind=_I,
        minimum=0,
        maximum=16,
        example=True,
    )
    replica_ack_timeout: float = setting(
        0.25,
        "JOBCORE_REPLICA_ACK_TIMEOUT",
        "how long a write waits for those replicas before it is refused as unconfirmed (a "
        "submission's `503` says the job may exist); shorter than `JOBCORE_REDIS_TIMEOUT`",
        kind=_D,
        minimum=0.001,
    )
    var_dir: str = setting(
        "var", "JOBCORE_VAR_DIR", "where `make run` keeps Redis data, its URL and its lock"
    )
    # --- API -----------------------------------------------------------------------------
    api_host: str = setting("127.0.0.1", "JOBCORE_API_HOST", "API bind address", example=True)
    api_port: int = setting(
        8000, "JOBCORE_API_PORT", "API port", kind=_I, minimum=1, maximum=65535, example=True
    )
    api_workers: int = setting(
        2, "JOBCORE_API_WORKERS", "gunicorn worker processes", kind=_I, minimum=1
    )
    api_read_timeout: float = setting(
        10.0,
        "JOBCORE_API_READ_TIMEOUT",
        "time a request has to arrive whole (line, headers and body) from its first byte; a "
        "slower one gets `408` and its connection is closed",
        kind=_D,
        minimum=0.1,
    )
    api_max_connections: int = setting(
        2048,
        "JOBCORE_API_MAX_CONNECTIONS",
        "open connections (or requests in flight) per API worker process past which new "
        "requests get `503`",
        kind=_I,
        minimum=1,
    )
    api_reuse_port: bool = setting(
        True,
        "JOBCORE_API_REUSE_PORT",
        "bind with `SO_REUSEPORT` so the kernel spreads connections over the gunicorn workers; "
        "the API still refuses to start when the port is taken",
        kind=_B,
    )
    api_keys: str = setting(
        "",
        "JOBCORE_API_KEYS",
        "API keys `name:role:secret,...` (roles `submit`, `admin`; see Authentication); "
        "empty = keys off",
        secret=True,
        shown_default="— (off)",
    )
    # --- workers -------------------------------------------------------------------------
    worker_processes: int = setting(
        2,
        "JOBCORE_WORKER_PROCESSES",
        "worker processes of one `jobcore-worker`",
        kind=_I,
        minimum=1,
        example=True,
    )
    worker_threads: int = setting(
        8,
        "JOBCORE_WORKER_THREADS",
        "threads of each worker process: jobs at once",
        kind=_I,
        minimum=1,
        example=True,
    )
    worker_queues: str = setting(
        "",
        "JOBCORE_WORKER_QUEUES",
        "queues a worker consumes, comma-separated (also `--queues`)",
        shown_default="every type's queue",
    )
    worker_shutdown_timeout: float = setting(
        25.0,
        "JOBCORE_WORKER_SHUTDOWN_TIMEOUT",
        "how long a stopping worker process waits for its running jobs (interruptible ones "
        "stop at once); a job still running then is recovered as an orphan",
        kind=_D,
        example=True,
    )
    worker_metrics_port: int = setting(
        9191,
        "JOBCORE_WORKER_METRICS_PORT",
        "worker Prometheus port (0 = off)",
        kind=_I,
        minimum=0,
        maximum=65535,
        example=True,
    )
    worker_metrics_host: str = setting(
        "127.0.0.1",
        "JOBCORE_WORKER_METRICS_HOST",
        "worker Prometheus bind address (the worker image sets `0.0.0.0`)",
        example=True,
    )
    job_modules: str = setting(
        "",
        "JOBCORE_JOB_MODULES",
        "modules adding job types (`SPECS`, `IMPLEMENTATIONS`), comma-separated",
        shown_default="—",
    )
    output_dir: str = setting(
        "output", "JOBCORE_OUTPUT_DIR", "where `csv-export` writes", example=True
    )
    # --- mail ----------------------------------------------------------------------------
    smtp_url: str = setting(
        "smtp://127.0.0.1:1025",
        "SMTP_URL",
        "mail server (`smtps://`, `smtp+starttls://`, `user:pass@`)",
    )
    smtp_from: str = setting("jobcore@localhost", "SMTP_FROM", "sender of every mail")
    smtp_timeout: float = setting(10.0, "SMTP_TIMEOUT", "SMTP timeout", kind=_D, minimum=0.001)
    # --- records and idempotency -----------------------------------------------------------
    retention: float = setting(
        7 * 86400,
        "JOBCORE_RETENTION",
        "how long completed and cancelled records are kept",
        kind=_D,
        example=True,
    )
    failed_retention: float = setting(
        30 * 86400,
        "JOBCORE_FAILED_RETENTION",
        "how long failed records (dead letters) are kept",
        kind=_D,
        example=True,
    )
    idempotency_window: float = setting(
        86400,
        "JOBCORE_IDEMPOTENCY_WINDOW",
        "how long an idempotency key is remembered",
        kind=_D,
        example=True,
    )
    require_idempotency_key: bool = setting(
        False,
        "JOBCORE_REQUIRE_IDEMPOTENCY_KEY",
        "make a submission without a key a `400`",
        kind=_B,
        example=True,
    )
    # --- recovery -----------------------------------------------------------------------
    owner_ttl: float = setting(
        15.0,
        "JOBCORE_OWNER_TTL",
        "how long a silent worker or scheduler is still alive",
        kind=_D,
        minimum=0.1,
    )
    heartbeat_interval: float = setting(
        2.0,
        "JOBCORE_HEARTBEAT_INTERVAL",
        "how often a process refreshes its heartbeat",
        kind=_D,
        minimum=0.01,
    )
    sweep_interval: float = setting(
        2.0,
        "JOBCORE_SWEEP_INTERVAL",
        "how often the lease holder renews its lease and looks for jobs of lost worker hosts",
        kind=_D,
        minimum=0.01,
    )
    broker_heartbeat_timeout: float = setting(
        10.0,
        "JOBCORE_BROKER_HEARTBEAT_TIMEOUT",
        "after how long Dramatiq's maintenance requeues a silent worker's unacked messages",
        kind=_D,
        minimum=0.1,
    )
    broker_maintenance_chance: int = setting(
        100_000,
        "JOBCORE_BROKER_MAINTENANCE_CHANCE",
        "how many of a million fetches run Dramatiq's maintenance",
        kind=_I,
        minimum=0,
        maximum=1_000_000,
    )
    # --- logs and traces -----------------------------------------------------------------
    log_level: str = setting("INFO", "JOBCORE_LOG_LEVEL", "log level", example=True)
    log_redact: str = setting(
        DEFAULT_LOG_REDACT, "JOBCORE_LOG_REDACT", "payload fields whose values logs redact"
    )
    trace_redis: bool = setting(
        False,
        "JOBCORE_TRACE_REDIS",
        "a span per Redis command inside request and job spans (costs about 15 % of a job's CPU)",
        kind=_B,
    )
    # --- limits (README "Limits") ----------------------------------------------------------
    max_body_bytes: int = setting(
        1024 * 1024,
        "JOBCORE_MAX_BODY_BYTES",
        "largest request body (`413` above)",
        kind=_I,
        minimum=1,
    )
    max_json_depth: int = setting(
        32,
        "JOBCORE_MAX_JSON_DEPTH",
        "deepest nesting of arrays and objects in a body",
        kind=_I,
        minimum=1,
        maximum=1000,
    )
    max_payload_keys: int = setting(
        1000,
        "JOBCORE_MAX_PAYLOAD_KEYS",
        "most object members in one payload, at every depth",
        kind=_I,
        minimum=1,
    )
    max_idempotency_key_length: int = setting(
        255,
        "JOBCORE_MAX_IDEMPOTENCY_KEY_LENGTH",
        "longest idempotency key, in characters",
        kind=_I,
        minimum=1,
        maximum=4096,
    )
    max_list_limit: int = setting(
        500, "JOBCORE_MAX_LIST_LIMIT", "largest page a listing may ask for", kind=_I, minimum=1
    )
    max_delay: float = setting(
        DRAMATIQ_MAX_DELAY_SECONDS,
        "JOBCORE_MAX_DELAY",
        "longest `delaySeconds`, and furthest `runAt` from now (the broker refuses 7 days)",
        kind=_D,
        minimum=0,
        maximum=DRAMATIQ_MAX_DELAY_SECONDS,
    )
    max_attempts_limit: int = setting(
        100,
        "JOBCORE_MAX_ATTEMPTS_LIMIT",
        "most `maxAttempts` a submission may ask for",
        kind=_I,
        minimum=1,
    )
    max_backoff: float = setting(
        86400,
        "JOBCORE_MAX_BACKOFF",
        "longest backoff delay a submission may ask for",
        kind=_D,
        minimum=0,
    )
    max_queue_depth: int = setting(
        100_000,
        "JOBCORE_MAX_QUEUE_DEPTH",
        "ready messages in a queue above which `POST /jobs` answers `503` (0 = no limit)",
        kind=_I,
        minimum=0,
        example=True,
    )
    queue_depth_cache: float = setting(
        1.0,
        "JOBCORE_QUEUE_DEPTH_CACHE",
        "how long a queue's depth is remembered per process",
        kind=_D,
    )
    #: Where ``redis_url`` came from: the variable, the file ``make run`` wrote, or
    #: ``"default"`` (neither was there). Not a setting: read from nothing.
    redis_url_source: str = DEFAULT_SOURCE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every declared variable; a bad value raises ``ConfigurationError`` naming it."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, declaration in declarations().items():
            if declaration.env not in env:
                continue
            try:
                values[name] = declaration.parse(env[declaration.env])
            except ValueError as exc:
                raise ConfigurationError(f"{declaration.env}: {exc}") from exc
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
        if settings.replica_ack_timeout >= settings.redis_timeout:
            # WAIT shares the call's socket: outliving its timeout would look like a dead Redis.
            raise ConfigurationError(
                f"{ENV['replica_ack_timeout']} ({settings.replica_ack_timeout:g} s) must be "
                f"shorter than {ENV['redis_timeout']} ({settings.redis_timeout:g} s)"
            )
        if settings.owner_ttl <= 2 * settings.heartbeat_interval:
            # A live process must beat at least twice per TTL, or its jobs look lost.
            raise ConfigurationError(
                f"{ENV['owner_ttl']} ({settings.owner_ttl:g} s) must be more than twice "
                f"{ENV['heartbeat_interval']} ({settings.heartbeat_interval:g} s)"
            )
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


def declarations() -> dict[str, Declaration]:
    """Each setting's declaration, by field name, in declaration order."""
    return {f.name: f.metadata["setting"] for f in fields(Settings) if "setting" in f.metadata}


#: The environment variable behind each setting, by field name.
ENV: dict[str, str] = {name: d.env for name, d in declarations().items()}


def default_of(name: str) -> Any:
    return next(f.default for f in fields(Settings) if f.name == name)


def readme_table() -> str:
    """The README's configuration table, from the declarations."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, d in declarations().items():
        default = default_of(name)
        shown = d.shown_default or (f"`{d.show(default)}`" if default != "" else "—")
        lines.append(f"| `{d.env}` | {shown} | {d.doc} |")
    return "\n".join(lines) + "\n"


def env_example() -> str:
    """``.env.example``, from the declarations: every variable with its doc; the common ones
    set to their defaults, the rest commented out."""
    lines = [
        "# Jobcore configuration: copy to .env (never committed) or export these variables.",
        "# Generated from jobcore/settings.py (python -m jobcore.settings --env-example).",
        "# Unset REDIS_URL: `make run` starts an embedded redis-server and writes its URL to var/.",
        "# Traces are exported when OTEL_EXPORTER_OTLP_ENDPOINT is set (OTLP/HTTP).",
    ]
    for name, d in declarations().items():
        default = default_of(name)
        value = "" if d.secret else d.show(default)
        lines.append("")
        lines.append(f"# {_plain(d.doc)}")
        lines.append(f"{'' if d.example else '# '}{d.env}={value}")
    return "\n".join(lines) + "\n"


def _plain(text: str) -> str:
    return text.replace("`", "")


def read_embedded_redis_url(var_dir: str) -> str | None:
    """The URL ``make run`` wrote for its embedded Redis, if any."""
    path = Path(var_dir) / REDIS_URL_FILE
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


if __name__ == "__main__":
    import sys

    print(env_example() if "--env-example" in sys.argv else readme_table(), end="")
